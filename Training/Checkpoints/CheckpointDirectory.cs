namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// Writes a checkpoint folder (model.safetensors, config.json, trainer-state.json, optimizer.safetensors; see
/// <see cref="TrainingCheckpoint"/>) so that it is replaced as a whole: either every new file is in place or the
/// previous checkpoint is.
/// </summary>
/// <remarks>
/// <para>Protocol for <see cref="Write"/> on folder DIR:</para>
/// <list type="number">
/// <item>Every file is written and fsynced into a fresh sibling folder <c>DIR.tmp-XXXX</c>.</item>
/// <item>If DIR exists it is renamed to <c>DIR.old-XXXX</c>; then <c>DIR.tmp-XXXX</c> is renamed to DIR; then
/// <c>DIR.old-XXXX</c> is deleted.</item>
/// </list>
/// <para>Guarantee: if anything fails in step 1 (an exception from a file's writer, a full disk, a read-only
/// folder), the staging folder is removed and DIR is left byte-identical. If the process dies at any point, a
/// complete checkpoint survives: DIR is either the complete previous or the complete new checkpoint, except in
/// the instant between the two renames of step 2, when DIR is absent and the complete previous checkpoint is
/// <c>DIR.old-XXXX</c>. <see cref="Recover"/> (run it before reading DIR) renames that back and removes stale
/// staging folders. Renames are not followed by a folder fsync (not available in .NET), so after a power loss the
/// visible state may be an earlier one of these states, never a partial file.</para>
/// </remarks>
public static class CheckpointDirectory
{
    /// <summary>The model parameters (safetensors, PyTorch names and layouts).</summary>
    public const string ModelFile = "model.safetensors";

    /// <summary>The architecture (the model config's JSON).</summary>
    public const string ConfigFile = "config.json";

    /// <summary>Step, seeds, loss scaler, tokenizer and the config's hash (<see cref="TrainerState"/>, JSON).</summary>
    public const string TrainerStateFile = "trainer-state.json";

    /// <summary>The optimizer moments (<see cref="OptimizerMoments"/>, safetensors).</summary>
    public const string OptimizerFile = "optimizer.safetensors";

    /// <summary>Writes a new checkpoint folder at <paramref name="directory"/>, replacing any previous one only
    /// when every file is complete on disk.</summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="files">File name (no folders) and a callback that writes its whole content.</param>
    /// <exception cref="ArgumentException">A file name is empty, contains a folder separator, or repeats.</exception>
    public static void Write(string directory, IReadOnlyList<(string FileName, Action<Stream> Write)> files)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(files);
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, write) in files)
        {
            ArgumentNullException.ThrowIfNull(write);
            if (string.IsNullOrEmpty(name) || name != Path.GetFileName(name) || name is "." or "..")
                throw new ArgumentException($"checkpoint file name '{name}' must be a plain file name", nameof(files));
            if (!names.Add(name)) throw new ArgumentException($"checkpoint file name '{name}' appears twice", nameof(files));
        }

        string suffix = Guid.NewGuid().ToString("N")[..12];
        string staging = $"{target}.tmp-{suffix}";
        try
        {
            Directory.CreateDirectory(staging);
            foreach (var (name, write) in files)
            {
                using var stream = new FileStream(Path.Combine(staging, name), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
                write(stream);
                stream.Flush(flushToDisk: true);
            }
        }
        catch
        {
            TryDeleteFolder(staging);
            throw;
        }

        string old = $"{target}.old-{suffix}";
        bool hadPrevious = Directory.Exists(target);
        try
        {
            if (hadPrevious) Directory.Move(target, old);
        }
        catch
        {
            TryDeleteFolder(staging);
            throw;
        }
        try
        {
            Directory.Move(staging, target);
        }
        catch
        {
            if (hadPrevious) Directory.Move(old, target); // put the previous checkpoint back
            TryDeleteFolder(staging);
            throw;
        }
        if (hadPrevious) TryDeleteFolder(old);
    }

    /// <summary>Brings <paramref name="directory"/> back to a complete checkpoint after a crash: if it is
    /// missing and a <c>.old-</c> sibling (the previous complete checkpoint) exists, that is renamed back;
    /// leftover <c>.tmp-</c> staging folders and, when DIR exists, <c>.old-</c> folders are deleted.</summary>
    /// <returns>True when DIR exists afterwards.</returns>
    public static bool Recover(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string parent = Path.GetDirectoryName(target)!;
        string name = Path.GetFileName(target);
        if (!Directory.Exists(parent)) return false;
        var olds = Directory.GetDirectories(parent, name + ".old-*");
        if (!Directory.Exists(target) && olds.Length > 0)
        {
            // Only one swap can be in flight per folder, so there is at most one .old- to restore; take the newest.
            var newest = olds.OrderByDescending(Directory.GetLastWriteTimeUtc).First();
            Directory.Move(newest, target);
            olds = olds.Where(o => o != newest).ToArray();
        }
        foreach (var stale in olds.Concat(Directory.GetDirectories(parent, name + ".tmp-*")))
            TryDeleteFolder(stale);
        return Directory.Exists(target);
    }

    static void TryDeleteFolder(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
