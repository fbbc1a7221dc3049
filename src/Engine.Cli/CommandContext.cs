namespace Engine.Cli;

/// <summary>Where a command writes, whether it may draw live progress, and the token that cancels it.</summary>
/// <param name="Output">Results and progress lines.</param>
/// <param name="Error">Warnings and per-item failures that do not stop the command.</param>
/// <param name="Cancellation">Cancelled by Ctrl+C (or by a host running the tool in-process).</param>
/// <param name="Interactive">True when <paramref name="Output"/> is the console attached to a terminal, so a live progress bar can be drawn.</param>
public sealed record CommandContext(TextWriter Output, TextWriter Error, CancellationToken Cancellation, bool Interactive);
