namespace Engine.Kernels;

/// <summary>
/// A warp's attention output accumulator in registers: 16 query rows by up to 160 head columns, as
/// 20 m16n8 mma tiles (tile j = columns 8j..8j+7). Accessed by constant or loop index through
/// switches, so no tile is ever addressed in local memory.
/// </summary>
public struct OutputTile
{
    /// <summary>Widest head: 20 tiles of 8 columns.</summary>
    public const int MaxHeadDim = 8 * 20;

    /// <summary>The tiles.</summary>
    public MmaAcc T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15, T16, T17, T18, T19;

    /// <summary>
    /// Tile <paramref name="j"/> += a b. The tile is selected, multiplied once and written back, so the
    /// instruction (or its emulation) is inlined once per call site rather than once per case.
    /// </summary>
    public void Mma<TCore, TElem>(TCore core, int j, FragA a, FragB b) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var c = Get(j);
        default(TElem).Mma(core, ref c, a, b);
        Set(j, c);
    }

    /// <summary>Replaces tile <paramref name="j"/>.</summary>
    public void Set(int j, MmaAcc c)
    {
        switch (j)
        {
            case 0: T0 = c; break;
            case 1: T1 = c; break;
            case 2: T2 = c; break;
            case 3: T3 = c; break;
            case 4: T4 = c; break;
            case 5: T5 = c; break;
            case 6: T6 = c; break;
            case 7: T7 = c; break;
            case 8: T8 = c; break;
            case 9: T9 = c; break;
            case 10: T10 = c; break;
            case 11: T11 = c; break;
            case 12: T12 = c; break;
            case 13: T13 = c; break;
            case 14: T14 = c; break;
            case 15: T15 = c; break;
            case 16: T16 = c; break;
            case 17: T17 = c; break;
            case 18: T18 = c; break;
            case 19: T19 = c; break;
        }
    }

    /// <summary>Tile <paramref name="j"/>.</summary>
    public readonly MmaAcc Get(int j) => j switch
    {
            0 => T0,
            1 => T1,
            2 => T2,
            3 => T3,
            4 => T4,
            5 => T5,
            6 => T6,
            7 => T7,
            8 => T8,
            9 => T9,
            10 => T10,
            11 => T11,
            12 => T12,
            13 => T13,
            14 => T14,
            15 => T15,
            16 => T16,
            17 => T17,
            18 => T18,
            _ => T19,
    };

    /// <summary>
    /// Scales row g of the first <paramref name="tiles"/> tiles by <paramref name="top"/> and row g + 8 by
    /// <paramref name="bottom"/> (the online-softmax correction); tiles past the head width hold zeros and are skipped.
    /// </summary>
    public void Rescale(float top, float bottom, int tiles)
    {
        Scale(ref T0, top, bottom);
        if (tiles > 1) Scale(ref T1, top, bottom);
        if (tiles > 2) Scale(ref T2, top, bottom);
        if (tiles > 3) Scale(ref T3, top, bottom);
        if (tiles > 4) Scale(ref T4, top, bottom);
        if (tiles > 5) Scale(ref T5, top, bottom);
        if (tiles > 6) Scale(ref T6, top, bottom);
        if (tiles > 7) Scale(ref T7, top, bottom);
        if (tiles > 8) Scale(ref T8, top, bottom);
        if (tiles > 9) Scale(ref T9, top, bottom);
        if (tiles > 10) Scale(ref T10, top, bottom);
        if (tiles > 11) Scale(ref T11, top, bottom);
        if (tiles > 12) Scale(ref T12, top, bottom);
        if (tiles > 13) Scale(ref T13, top, bottom);
        if (tiles > 14) Scale(ref T14, top, bottom);
        if (tiles > 15) Scale(ref T15, top, bottom);
        if (tiles > 16) Scale(ref T16, top, bottom);
        if (tiles > 17) Scale(ref T17, top, bottom);
        if (tiles > 18) Scale(ref T18, top, bottom);
        if (tiles > 19) Scale(ref T19, top, bottom);
    }

    private static void Scale(ref MmaAcc c, float top, float bottom)
    {
        c.C0 *= top;
        c.C1 *= top;
        c.C2 *= bottom;
        c.C3 *= bottom;
    }
}
