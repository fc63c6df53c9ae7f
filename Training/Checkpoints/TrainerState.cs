using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Precision;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// Everything besides the weights and the optimizer moments that an exact resume needs, stored as
/// <c>trainer-state.json</c> in a checkpoint folder. The learning-rate schedule and the data position are functions
/// of (<see cref="Step"/>, <see cref="Seed"/>): schedules are pure functions of the step and
/// <see cref="BatchSampler"/> draws step s's windows from (seed, s) alone, so nothing else needs saving for them.
/// </summary>
/// <param name="Step">Training steps completed, including steps skipped for fp16 overflow; the next step is Step + 1
/// (the schedule and the sampler are evaluated there).</param>
/// <param name="OptimizerStep">Optimizer updates applied (AdamW's bias-correction t); less than <paramref name="Step"/>
/// by the skipped steps.</param>
/// <param name="ConfigSha256">SHA-256 (lowercase hex) of the checkpoint's config.json bytes (<see cref="HashConfig"/>):
/// ties the state to the model it belongs to.</param>
/// <param name="Tokenizer">The tokenizer spec (<see cref="TokenizerSpec"/> text).</param>
/// <param name="Seed">The run's seed (data order, dropout).</param>
/// <param name="TokensSeen">Training tokens consumed so far.</param>
/// <param name="ElapsedSeconds">Training wall time so far, so that throughput and ETA continue across resumes.</param>
/// <param name="LossScaler">The fp16 loss scaler's state, or null when the run does not scale the loss.</param>
public sealed record TrainerState(long Step, long OptimizerStep, string ConfigSha256, TokenizerSpec Tokenizer, ulong Seed,
    long TokensSeen, double ElapsedSeconds, LossScalerState? LossScaler)
{
    /// <summary>The <c>"format"</c> value of a trainer-state file.</summary>
    public const string FormatName = "dslm-trainer-state";

    /// <summary>The format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>SHA-256 of <paramref name="configJson"/> as lowercase hex.</summary>
    public static string HashConfig(ReadOnlySpan<byte> configJson) => Convert.ToHexStringLower(SHA256.HashData(configJson));

    /// <summary>Writes this state as indented JSON (see docs/training.md for the fields).</summary>
    public void Write(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        using var json = new Utf8JsonWriter(destination, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("format", FormatName);
        json.WriteNumber("format_version", FormatVersion);
        json.WriteNumber("step", Step);
        json.WriteNumber("optimizer_step", OptimizerStep);
        json.WriteString("config_sha256", ConfigSha256);
        json.WriteString("tokenizer", Tokenizer.ToString());
        json.WriteNumber("seed", Seed);
        json.WriteNumber("tokens_seen", TokensSeen);
        json.WriteNumber("elapsed_seconds", ElapsedSeconds);
        if (LossScaler is { } scaler)
        {
            json.WriteStartObject("loss_scaler");
            json.WriteNumber("scale", scaler.Scale);
            json.WriteNumber("growth_interval", scaler.GrowthInterval);
            json.WriteNumber("minimum_scale", scaler.MinimumScale);
            json.WriteNumber("maximum_scale", scaler.MaximumScale);
            json.WriteNumber("clean_steps", scaler.CleanSteps);
            json.WriteNumber("skipped_steps", scaler.SkippedSteps);
            json.WriteEndObject();
        }
        else json.WriteNull("loss_scaler");
        json.WriteEndObject();
    }

    /// <summary>Reads and validates a trainer-state file.</summary>
    /// <exception cref="CheckpointFormatException">The file is missing, truncated or corrupt JSON, of another format
    /// or version, lacks a field, or holds an invalid value; the message names the file and the field.</exception>
    public static TrainerState Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckpointFormatException Problem(string problem, Exception? inner = null) => new(path, problem, inner);
        byte[] content;
        try { content = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Problem($"cannot read the trainer state: {e.Message}", e); }
        JsonDocument document;
        try { document = JsonDocument.Parse(content); }
        catch (JsonException e) { throw Problem($"not valid JSON (truncated or corrupt): {e.Message}", e); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Problem("not a JSON object");
            JsonElement Field(JsonElement parent, string name, JsonValueKind kind, string prefix = "") =>
                parent.TryGetProperty(name, out var value) ? value.ValueKind == kind ? value : throw Problem($"field '{prefix}{name}' is {value.ValueKind}, expected {kind}")
                : throw Problem($"missing field '{prefix}{name}'");
            long Integer(JsonElement parent, string name, long minimum, string prefix = "") =>
                Field(parent, name, JsonValueKind.Number, prefix).TryGetInt64(out long value) && value >= minimum ? value
                : throw Problem($"field '{prefix}{name}' must be an integer >= {minimum}");
            double Real(JsonElement parent, string name, string prefix = "") =>
                Field(parent, name, JsonValueKind.Number, prefix).GetDouble();

            string format = Field(root, "format", JsonValueKind.String).GetString()!;
            if (format != FormatName) throw Problem($"format is '{format}', expected '{FormatName}'");
            long version = Integer(root, "format_version", 0);
            if (version != FormatVersion) throw Problem($"format version {version} is not supported (this build reads version {FormatVersion})");

            long step = Integer(root, "step", 0);
            long optimizerStep = Integer(root, "optimizer_step", 0);
            if (optimizerStep > step) throw Problem($"optimizer_step {optimizerStep} exceeds step {step}");
            string hash = Field(root, "config_sha256", JsonValueKind.String).GetString()!;
            if (hash.Length != 64 || !hash.All(char.IsAsciiHexDigitLower)) throw Problem($"config_sha256 '{hash}' is not 64 lowercase hex digits");
            TokenizerSpec tokenizer;
            try { tokenizer = TokenizerSpec.Parse(Field(root, "tokenizer", JsonValueKind.String).GetString()!); }
            catch (FormatException e) { throw Problem($"field 'tokenizer': {e.Message}", e); }
            if (!Field(root, "seed", JsonValueKind.Number).TryGetUInt64(out ulong seed)) throw Problem("field 'seed' must be an unsigned 64-bit integer");
            long tokensSeen = Integer(root, "tokens_seen", 0);
            double elapsed = Real(root, "elapsed_seconds");
            if (!(elapsed >= 0)) throw Problem($"elapsed_seconds {elapsed.ToString(CultureInfo.InvariantCulture)} is negative");

            LossScalerState? scaler = null;
            if (!root.TryGetProperty("loss_scaler", out var scalerElement)) throw Problem("missing field 'loss_scaler' (null when the loss is not scaled)");
            if (scalerElement.ValueKind != JsonValueKind.Null)
            {
                if (scalerElement.ValueKind != JsonValueKind.Object) throw Problem($"field 'loss_scaler' is {scalerElement.ValueKind}, expected Object or Null");
                const string prefix = "loss_scaler.";
                scaler = new LossScalerState(Real(scalerElement, "scale", prefix), (int)Math.Min(Integer(scalerElement, "growth_interval", 1, prefix), int.MaxValue),
                    Real(scalerElement, "minimum_scale", prefix), Real(scalerElement, "maximum_scale", prefix),
                    (int)Math.Min(Integer(scalerElement, "clean_steps", 0, prefix), int.MaxValue), Integer(scalerElement, "skipped_steps", 0, prefix));
                try { _ = new DynamicLossScaler(scaler); }
                catch (ArgumentOutOfRangeException e) { throw Problem($"field 'loss_scaler' is inconsistent: {e.Message}", e); }
            }
            return new TrainerState(step, optimizerStep, hash, tokenizer, seed, tokensSeen, elapsed, scaler);
        }
    }
}
