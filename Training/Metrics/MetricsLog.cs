using System.Buffers;
using System.Globalization;
using System.Text.Json;
using DeepScaleLM.Training.Checkpoints;

namespace DeepScaleLM.Training.Metrics;

/// <summary>
/// The metrics log: JSON Lines, one <see cref="MetricsEntry"/> per line, each line flushed as it is written, e.g.
/// <code>{"step":10,"loss":4.25,"lr":0.0003,"grad_norm":1.5,"tokens_per_second":8192,"loss_scale":1024,"elapsed":12.5}</code>
/// followed, when present, by <c>"validation_loss"</c>, <c>"warnings"</c> (strings) and one key per named array.
/// Non-finite numbers (an overflow step's gradient norm) are the strings <c>"NaN"</c>, <c>"Infinity"</c>,
/// <c>"-Infinity"</c>, so every line stays valid JSON. <see cref="Resume"/> keeps the lines up to the resumed step
/// and appends after them, so a resumed run's log has each step once.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    const string StepKey = "step", LossKey = "loss", LearningRateKey = "lr", GradientNormKey = "grad_norm",
        TokensPerSecondKey = "tokens_per_second", LossScaleKey = "loss_scale", ElapsedKey = "elapsed",
        ValidationLossKey = "validation_loss", WarningsKey = "warnings";

    static readonly HashSet<string> FixedKeys = [StepKey, LossKey, LearningRateKey, GradientNormKey, TokensPerSecondKey,
        LossScaleKey, ElapsedKey, ValidationLossKey, WarningsKey];

    readonly FileStream _file;
    readonly ArrayBufferWriter<byte> _line = new(1024);
    readonly Utf8JsonWriter _json;

    MetricsLog(string path, FileStream file)
    {
        FilePath = path;
        _file = file;
        _json = new Utf8JsonWriter(_line);
    }

    /// <summary>The log file.</summary>
    public string FilePath { get; }

    /// <summary>Starts a new log at <paramref name="path"/>, replacing any file there.</summary>
    public static MetricsLog Create(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new MetricsLog(path, new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read));
    }

    /// <summary>Continues the log of a run resumed after step <paramref name="resumedStep"/>: lines with a larger
    /// step (written after that checkpoint) and a torn last line (a crash mid-write) are removed, atomically, then
    /// new lines are appended. A missing file starts a new log.</summary>
    /// <exception cref="InvalidDataException">A complete line is not a valid entry (the message names the file and line).</exception>
    public static MetricsLog Resume(string path, long resumedStep)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) return Create(path);
        byte[] content = File.ReadAllBytes(path);
        int keep = 0; // bytes of the lines to keep
        int lineNumber = 0;
        for (int start = 0; start < content.Length;)
        {
            int end = Array.IndexOf(content, (byte)'\n', start);
            if (end < 0) break; // torn last line
            lineNumber++;
            if (ParseLine(path, lineNumber, content.AsSpan(start, end - start)).Step <= resumedStep) keep = end + 1;
            else break;
            start = end + 1;
        }
        if (keep < content.Length) AtomicFile.Write(path, stream => stream.Write(content, 0, keep));
        return new MetricsLog(path, new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read));
    }

    /// <summary>Writes <paramref name="entry"/> as one line and flushes it to the operating system.</summary>
    /// <exception cref="ArgumentException">An array is named like a fixed key.</exception>
    public void Append(MetricsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _line.ResetWrittenCount();
        _json.Reset();
        _json.WriteStartObject();
        _json.WriteNumber(StepKey, entry.Step);
        WriteNumber(LossKey, entry.Loss);
        WriteNumber(LearningRateKey, entry.LearningRate);
        WriteNumber(GradientNormKey, entry.GradientNorm);
        WriteNumber(TokensPerSecondKey, entry.TokensPerSecond);
        WriteNumber(LossScaleKey, entry.LossScale);
        WriteNumber(ElapsedKey, entry.ElapsedSeconds);
        if (entry.ValidationLoss is double validation) WriteNumber(ValidationLossKey, validation);
        if (entry.Warnings is { } warnings)
        {
            _json.WriteStartArray(WarningsKey);
            foreach (string warning in warnings) _json.WriteStringValue(warning);
            _json.WriteEndArray();
        }
        foreach (var (name, values) in entry.Arrays ?? new Dictionary<string, double[]>())
        {
            if (FixedKeys.Contains(name)) throw new ArgumentException($"array name '{name}' is a fixed key of the metrics log", nameof(entry));
            _json.WriteStartArray(name);
            foreach (double value in values) WriteNumberValue(value);
            _json.WriteEndArray();
        }
        _json.WriteEndObject();
        _json.Flush();
        _file.Write(_line.WrittenSpan);
        _file.WriteByte((byte)'\n');
        _file.Flush();
    }

    /// <summary>Reads every complete line of a metrics log (a torn last line is ignored).</summary>
    /// <exception cref="InvalidDataException">A line is not a valid entry (the message names the file and line).</exception>
    public static IReadOnlyList<MetricsEntry> Read(string path)
    {
        byte[] content = File.ReadAllBytes(path);
        var entries = new List<MetricsEntry>();
        for (int start = 0, lineNumber = 1; start < content.Length; lineNumber++)
        {
            int end = Array.IndexOf(content, (byte)'\n', start);
            if (end < 0) break;
            entries.Add(ParseLine(path, lineNumber, content.AsSpan(start, end - start)));
            start = end + 1;
        }
        return entries;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        _json.Dispose();
        _file.Dispose();
    }

    void WriteNumber(string name, double value)
    {
        _json.WritePropertyName(name);
        WriteNumberValue(value);
    }

    void WriteNumberValue(double value)
    {
        if (double.IsFinite(value)) _json.WriteNumberValue(value);
        else _json.WriteStringValue(value.ToString(CultureInfo.InvariantCulture)); // "NaN", "Infinity", "-Infinity"
    }

    static MetricsEntry ParseLine(string path, int lineNumber, ReadOnlySpan<byte> line)
    {
        InvalidDataException Problem(string problem, Exception? inner = null) => new($"{path} line {lineNumber}: {problem}", inner);
        JsonDocument document;
        try { document = JsonDocument.Parse(line.ToArray()); }
        catch (JsonException e) { throw Problem($"not valid JSON: {e.Message}", e); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Problem("not a JSON object");
            double Number(JsonElement element, string name) => element.ValueKind switch
            {
                JsonValueKind.Number => element.GetDouble(),
                JsonValueKind.String when double.TryParse(element.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && !double.IsFinite(v) => v,
                _ => throw Problem($"'{name}' is not a number"),
            };
            double Required(string name) => root.TryGetProperty(name, out var element) ? Number(element, name) : throw Problem($"missing '{name}'");
            if (!root.TryGetProperty(StepKey, out var stepElement) || !stepElement.TryGetInt64(out long step))
                throw Problem($"missing or non-integer '{StepKey}'");
            var arrays = new Dictionary<string, double[]>(StringComparer.Ordinal);
            List<string>? warnings = null;
            double? validation = null;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == ValidationLossKey) validation = Number(property.Value, ValidationLossKey);
                else if (property.Name == WarningsKey)
                {
                    if (property.Value.ValueKind != JsonValueKind.Array) throw Problem($"'{WarningsKey}' is not an array");
                    warnings = [.. property.Value.EnumerateArray().Select(w => w.ValueKind == JsonValueKind.String ? w.GetString()! : throw Problem($"'{WarningsKey}' holds a non-string"))];
                }
                else if (!FixedKeys.Contains(property.Name))
                {
                    if (property.Value.ValueKind != JsonValueKind.Array) throw Problem($"'{property.Name}' is not an array of numbers");
                    arrays[property.Name] = [.. property.Value.EnumerateArray().Select(v => Number(v, property.Name))];
                }
            }
            return new MetricsEntry(step, Required(LossKey), Required(LearningRateKey), Required(GradientNormKey),
                Required(TokensPerSecondKey), Required(LossScaleKey), Required(ElapsedKey))
            {
                ValidationLoss = validation,
                Arrays = arrays.Count > 0 ? arrays : null,
                Warnings = warnings,
            };
        }
    }
}
