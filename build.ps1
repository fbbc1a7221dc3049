#!/usr/bin/env pwsh
# Build entry point (PowerShell 7, Linux and Windows).
#   dotnet tool restore && dotnet pwsh build.ps1 -Target test
# Arguments after the named ones are passed through to the underlying command, e.g.
#   dotnet pwsh build.ps1 -Target test --filter "FullyQualifiedName~Gemm"
#   dotnet pwsh build.ps1 -Target bench --filter "*Conv*" --job short
# Give dotnet options in their long form (--verbosity, not -v): a short option can bind to a
# parameter of this script instead (-v is PowerShell's -Verbose, -c is -Configuration).
# The script exits with the exit code of the first command that fails (0 when all succeed).
[CmdletBinding(PositionalBinding = $false)]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'bench', 'pack', 'native', 'all')]
    [string] $Target = 'build',

    [string] $Configuration = 'Release',

    # Runtime identifier for 'pack' (e.g. linux-x64, win-x64); empty = framework-dependent, portable.
    [string] $Runtime = '',

    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]] $Rest = @()
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'

$Root = $PSScriptRoot
$Solution = Join-Path $Root 'Engine.sln'
$Artifacts = Join-Path $Root 'artifacts'
$NativeBuild = Join-Path (Join-Path $Root 'build') 'native'

# Same defaults as .ci/run: shared data next to the repository, unless set explicitly.
$Shared = Join-Path (Split-Path $Root -Parent) 'shared'
if (-not $env:ENGINE_SHARED -and (Test-Path $Shared -PathType Container)) { $env:ENGINE_SHARED = $Shared }
$Fixtures = Join-Path $Shared 'fixtures'
if (-not $env:ENGINE_FIXTURES -and (Test-Path $Fixtures -PathType Container)) { $env:ENGINE_FIXTURES = $Fixtures }

# Runs an external command; on a non-zero exit code stops the whole script with that code.
function Invoke-Native([string] $Exe, [string[]] $Arguments) {
    Write-Host "> $Exe $($Arguments -join ' ')" -ForegroundColor Cyan
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) {
        Write-Host "'$Exe' failed with exit code $LASTEXITCODE" -ForegroundColor Red
        exit $LASTEXITCODE
    }
}

function Invoke-Build {
    Invoke-Native dotnet (@('build', $Solution, '-c', $Configuration) + $Rest)
}

function Invoke-Test {
    Invoke-Native dotnet (@('test', $Solution, '-c', $Configuration) + $Rest)
}

function Invoke-Bench {
    # BenchmarkDotNet runs nothing from a Debug build, so the bench always builds in Release.
    $project = Join-Path (Join-Path $Root 'bench') 'Engine.Bench'
    Invoke-Native dotnet (@('run', '-c', 'Release', '--project', $project, '--') + $Rest)
}

# The CLI is shipped as a publish folder (artifacts/Engine.Cli), not as a NuGet package.
function Invoke-Pack {
    $project = Join-Path (Join-Path $Root 'src') 'Engine.Cli'
    $out = Join-Path $Artifacts 'Engine.Cli'
    $publish = @('publish', $project, '-c', $Configuration, '-o', $out)
    if ($Runtime) { $publish += @('-r', $Runtime, '--self-contained', 'false') }
    Invoke-Native dotnet ($publish + $Rest)
}

function Invoke-NativeBuild {
    Invoke-Native cmake @('-S', $Root, '-B', $NativeBuild, "-DCMAKE_BUILD_TYPE=$Configuration")
    Invoke-Native cmake @('--build', $NativeBuild, '--config', $Configuration, '--parallel', [Environment]::ProcessorCount)
    Invoke-Native ctest (@('--test-dir', $NativeBuild, '-C', $Configuration, '--output-on-failure') + $Rest)
}

switch ($Target) {
    'build'  { Invoke-Build }
    'test'   { Invoke-Test }
    'bench'  { Invoke-Bench }
    'pack'   { Invoke-Pack }
    'native' { Invoke-NativeBuild }
    'all'    {
        # Extra arguments are meant for one command; with 'all' they would reach every step.
        if ($Rest.Count -gt 0) { Write-Host "-Target all ignores extra arguments: $Rest" -ForegroundColor Yellow; $Rest = @() }
        Invoke-Build; Invoke-Test; Invoke-NativeBuild; Invoke-Pack
    }
}
exit 0
