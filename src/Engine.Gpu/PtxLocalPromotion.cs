using System.Text;
using System.Text.RegularExpressions;

namespace Engine.Gpu;

/// <summary>
/// Rewrites ILGPU's PTX so that its 4- and 8-byte <c>.local</c> slots become PTX registers. ILGPU binds every result of
/// inline PTX (<c>CudaAsm.Emit</c>'s <c>out</c> and <c>CudaAsm.EmitRef</c>'s <c>ref</c> arguments) to a stack slot
/// of its own: a <c>__local_depotN</c> array of 4 (or 8) bytes whose address is moved once into a 64-bit register and
/// then only stored to and loaded from. ptxas does not promote those slots in the tensor-core kernels (432-608
/// bytes of stack per thread, every mma operand through local memory, measured on the H200), so the rewrite
/// does it: each slot whose address register is used for nothing but whole-slot loads and stores becomes a
/// <c>.b32</c> (or <c>.b64</c>) register, its stores and loads <c>mov</c>s. Slots used any other way are left as
/// they are. The result is the same program: a slot that only ever holds one value through plain loads and
/// stores of its full width is a register.
/// </summary>
public static partial class PtxLocalPromotion
{
    /// <summary>The names of the register arrays the promoted 4- and 8-byte slots live in (<c>%lp0</c>, <c>%lq0</c>, ...).</summary>
    public const string RegisterPrefix = "%lp", WideRegisterPrefix = "%lq";

    [GeneratedRegex(@"^\s*\.local\s+\.align\s+\d+\s+\.b8\s+(__local_depot\d+)\[([48])\];\s*$")]
    private static partial Regex SlotDeclaration();

    [GeneratedRegex(@"^\s*mov\.[bu]64\s+(%rd\d+),\s*(__local_depot\d+);\s*$")]
    private static partial Regex SlotAddress();

    [GeneratedRegex(@"^(\s*)st\.local\.[busf](32|64)\s+\[(%rd\d+)\],\s*([^;]+);\s*$")]
    private static partial Regex SlotStore();

    [GeneratedRegex(@"^(\s*)ld\.local\.[busf](32|64)\s+(%\w+),\s*\[(%rd\d+)\];\s*$")]
    private static partial Regex SlotLoad();

    [GeneratedRegex(@"%rd\d+\b|__local_depot\d+\b")]
    private static partial Regex Names();

    [GeneratedRegex(@"^0[fFdD]([0-9A-Fa-f]{8}|[0-9A-Fa-f]{16})$")]
    private static partial Regex FloatLiteral();

    [GeneratedRegex(@"^\s*(?:\.visible\s+|\.extern\s+|\.weak\s+)?\.(?:entry|func)\b")]
    private static partial Regex FunctionHeader();

    /// <summary>
    /// Returns <paramref name="ptx"/> with every promotable 4- or 8-byte local slot turned into a register;
    /// <paramref name="promoted"/> counts them and <paramref name="kept"/> the local slots left in memory.
    /// </summary>
    public static string Promote(string ptx, out int promoted, out int kept)
    {
        ArgumentNullException.ThrowIfNull(ptx);
        promoted = kept = 0;
        var lines = ptx.Split('\n');
        var output = new StringBuilder(ptx.Length);
        // Register names are per function: rewrite each function's lines on their own.
        int start = 0;
        for (int i = 1; i <= lines.Length; i++)
        {
            if (i < lines.Length && !FunctionHeader().IsMatch(lines[i])) continue;
            PromoteFunction(lines.AsSpan(start, i - start), ref promoted, ref kept);
            start = i;
        }
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i] is null) continue;
            output.Append(lines[i]);
            if (i < lines.Length - 1) output.Append('\n');
        }
        return output.ToString();
    }

    // Rewrites one function's lines in place (a removed line becomes null).
    private static void PromoteFunction(Span<string> lines, ref int promoted, ref int kept)
    {
        var declared = new Dictionary<string, int>();   // slot -> size in bits (32 or 64)
        var address = new Dictionary<string, string>(); // address register -> slot
        var uses = new Dictionary<string, int>();       // name -> occurrences
        bool prefixTaken = false;
        foreach (var line in lines)
        {
            if (line.Contains(RegisterPrefix, StringComparison.Ordinal) || line.Contains(WideRegisterPrefix, StringComparison.Ordinal)) prefixTaken = true;
            if (SlotDeclaration().Match(line) is { Success: true } d) declared[d.Groups[1].Value] = d.Groups[2].Value == "8" ? 64 : 32;
            else if (SlotAddress().Match(line) is { Success: true } a)
            {
                // A register given two slots' addresses is not a single slot's: never promote it.
                if (!address.TryAdd(a.Groups[1].Value, a.Groups[2].Value)) address[a.Groups[1].Value] = "";
            }
            foreach (Match m in Names().Matches(line)) uses[m.Value] = uses.GetValueOrDefault(m.Value) + 1;
        }
        if (declared.Count == 0) return;
        if (prefixTaken)
        {
            kept += declared.Count;
            return;
        }

        // Each address register's loads and stores of a given width: a slot is promoted when loads and stores of its
        // own width are all the uses of its register.
        var accesses = new Dictionary<(string, int), int>();
        foreach (var line in lines)
        {
            var access = SlotStore().Match(line) is { Success: true } s ? (s.Groups[3].Value, int.Parse(s.Groups[2].Value))
                : SlotLoad().Match(line) is { Success: true } l ? (l.Groups[4].Value, int.Parse(l.Groups[2].Value)) : default;
            if (access.Item1 is not null) accesses[access] = accesses.GetValueOrDefault(access) + 1;
        }
        var count = new Dictionary<int, int> { [32] = 0, [64] = 0 };
        var registerOf = new Dictionary<string, (string Name, int Bits)>();
        var promotedSlots = new HashSet<string>();
        foreach (var (register, slot) in address)
        {
            if (slot.Length == 0 || !declared.TryGetValue(slot, out int bits)) continue;
            if (uses.GetValueOrDefault(slot) != 2) continue; // its declaration and this address move, nothing else
            if (uses.GetValueOrDefault(register) != 1 + accesses.GetValueOrDefault((register, bits))) continue;
            registerOf[register] = ((bits == 64 ? WideRegisterPrefix : RegisterPrefix) + count[bits]++, bits);
            promotedSlots.Add(slot);
        }
        promoted += promotedSlots.Count;
        kept += declared.Count - promotedSlots.Count;
        if (promotedSlots.Count == 0) return;

        var declare = new Dictionary<int, bool> { [32] = count[32] > 0, [64] = count[64] > 0 };
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (SlotDeclaration().Match(line) is { Success: true } d && promotedSlots.Contains(d.Groups[1].Value))
            {
                // The first promoted slot's declaration becomes the register arrays'; the others go.
                string? arrays = null;
                foreach (int bits in new[] { 32, 64 })
                    if (declare[bits])
                    {
                        arrays += (arrays is null ? "" : "\n") + $"\t.reg .b{bits} {(bits == 64 ? WideRegisterPrefix : RegisterPrefix)}<{count[bits]}>;";
                        declare[bits] = false;
                    }
                lines[i] = arrays!;
            }
            else if (SlotAddress().Match(line) is { Success: true } a && registerOf.ContainsKey(a.Groups[1].Value))
                lines[i] = null!;
            else if (SlotStore().Match(line) is { Success: true } s && registerOf.TryGetValue(s.Groups[3].Value, out var target))
            {
                // A float literal (0fXXXXXXXX, 0dXXXXXXXXXXXXXXXX) is written as its bits: mov.bN takes an integer literal.
                var value = FloatLiteral().Replace(s.Groups[4].Value.Trim(), "0x$1");
                lines[i] = $"{s.Groups[1].Value}mov.b{target.Bits}\t{target.Name}, {value};";
            }
            else if (SlotLoad().Match(line) is { Success: true } l && registerOf.TryGetValue(l.Groups[4].Value, out var source))
                lines[i] = $"{l.Groups[1].Value}mov.b{source.Bits}\t{l.Groups[3].Value}, {source.Name};";
        }
    }
}
