namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// Replaces a file all at once: the content goes to a temporary file in the same folder, is flushed to disk, and
/// is then renamed over the target.
/// </summary>
/// <remarks>
/// Guarantee: at every moment the target path holds either its previous complete content or the new complete
/// content, never a mix or a prefix (a rename within one folder is atomic on POSIX file systems and on NTFS).
/// When the write callback or the flush throws, the temporary file is deleted and the target is untouched. The
/// new content is on disk (fsync) before the rename; the rename itself is durable once the file system commits
/// the folder, which this class does not force (.NET offers no folder fsync), so after a power loss the target
/// may still hold the previous content, but never a partial one.
/// </remarks>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> atomically with <paramref name="write"/>.</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the whole content to the stream it is given; it must not close the stream.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{path} has no folder", nameof(path));
        string temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    static void TryDelete(string file)
    {
        try { File.Delete(file); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
