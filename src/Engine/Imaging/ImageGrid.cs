namespace Engine.Imaging;

/// <summary>
/// Tiles images of one size into a rows x columns grid, row-major, with <c>padding</c> pixels between
/// cells and around the border; cells without an image, and the padding, take the fill value.
/// </summary>
public static class ImageGrid
{
    /// <summary>
    /// Builds the grid. <paramref name="columns"/> defaults to ceil(sqrt(N)) and <paramref name="rows"/>
    /// to as many as the images need. Size: columns * (W + padding) + padding by
    /// rows * (H + padding) + padding.
    /// </summary>
    public static PixelImage Create(IReadOnlyList<PixelImage> images, int? rows = null, int? columns = null, int padding = 2, byte fill = 0)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("A grid needs at least one image.", nameof(images));
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "Grid padding must be >= 0.");
        int n = images.Count;
        int cols = columns ?? (rows is { } r0 && r0 > 0 ? (n + r0 - 1) / r0 : (int)Math.Ceiling(Math.Sqrt(n)));
        if (cols < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "Grid columns must be >= 1.");
        int rowCount = rows ?? (n + cols - 1) / cols;
        if (rowCount < 1) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Grid rows must be >= 1.");
        if ((long)rowCount * cols < n) throw new ArgumentException($"A {rowCount}x{cols} grid has room for {(long)rowCount * cols} images; got {n}.");

        var first = images[0];
        int w = first.Width, h = first.Height, c = first.Channels;
        for (int i = 1; i < n; i++)
            if (images[i].Width != w || images[i].Height != h || images[i].Channels != c)
                throw new ArgumentException($"Grid image {i} is {images[i].Width}x{images[i].Height}x{images[i].Channels}; image 0 is {w}x{h}x{c}.", nameof(images));

        long gridW = (long)cols * (w + padding) + padding, gridH = (long)rowCount * (h + padding) + padding;
        if (gridW * gridH * c > Array.MaxLength) throw new ArgumentException($"A {gridW}x{gridH} grid is too large.");
        var pixels = new byte[gridW * gridH * c];
        if (fill != 0) Array.Fill(pixels, fill);
        int stride = (int)gridW * c, rowBytes = w * c;
        for (int i = 0; i < n; i++)
        {
            int gx = padding + (i % cols) * (w + padding), gy = padding + (i / cols) * (h + padding);
            var src = images[i].Pixels;
            for (int y = 0; y < h; y++)
                Array.Copy(src, y * rowBytes, pixels, (gy + y) * stride + gx * c, rowBytes);
        }
        return new PixelImage((int)gridW, (int)gridH, c, pixels);
    }
}
