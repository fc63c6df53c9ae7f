using System.Text.Json;
using DeepScaleLM.Layers;
using System.Text.Json.Serialization;

namespace DeepScaleLM.Training;

/// <summary>The learning-rate curve after warmup.</summary>
public enum ScheduleKind
{
    /// <summary>Cosine decay from the peak to the minimum (<see cref="Optimization.WarmupCosineSchedule"/>).</summary>
    Cosine,
    /// <summary>Linear decay from the peak to the minimum (<see cref="Optimization.WarmupLinearSchedule"/>).</summary>
    Linear,
    /// <summary>The peak learning rate throughout, after the warmup.</summary>
    Constant,
}

/// <summary>
/// How a model is trained: optimizer, schedule, batch, evaluation, logging and checkpoint cadence. Stored as
/// <c>training.json</c> in every checkpoint so a resume continues the same run. Every member has a default that
/// trains the default decoder on 2 cores in a few minutes.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps of the whole run.</summary>
    public int Steps { get; init; } = 300;
    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Context length of a training sequence; null: the model's sequence length.</summary>
    public int? Tokens { get; init; }
    /// <summary>Micro-batches whose gradients are summed into one optimizer step.</summary>
    public int AccumulationSteps { get; init; } = 1;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>Learning rate at the end of the decay.</summary>
    public double MinLearningRate { get; init; } = 2e-4;
    /// <summary>Linear warmup steps from 0 to the peak.</summary>
    public int WarmupSteps { get; init; } = 30;
    /// <summary>The curve after warmup.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    /// <summary>AdamW decoupled weight decay, applied to the matrices only (the model's <c>DecayWeight</c> parameters).</summary>
    public float WeightDecay { get; init; } = 0.1f;
    /// <summary>AdamW beta1.</summary>
    public float Beta1 { get; init; } = 0.9f;
    /// <summary>AdamW beta2.</summary>
    public float Beta2 { get; init; } = 0.95f;
    /// <summary>AdamW epsilon.</summary>
    public float Epsilon { get; init; } = 1e-8f;
    /// <summary>Clip the global gradient norm to this; 0 disables clipping.</summary>
    public float GradientClip { get; init; } = 1f;
    /// <summary>Fraction of the token file held out (its tail) for validation.</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>Evaluate on the validation split every this many steps (and at the end); 0: only at the end.</summary>
    public int EvalEvery { get; init; } = 100;
    /// <summary>Validation batches per evaluation (fixed windows, the same every time).</summary>
    public int EvalBatches { get; init; } = 8;
    /// <summary>Write a checkpoint every this many steps (and at the end) when the run has an output folder; 0: only at the end.</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Log a metrics line every this many steps.</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Measure per-layer moments against the theory every this many steps; 0 disables the monitor.</summary>
    public int MonitorEvery { get; init; } = 50;
    /// <summary>The monitor warns when a measured moment leaves [1/f, f] times its prediction.</summary>
    public double MonitorFactor { get; init; } = 2;
    /// <summary>Masked-LM only: the fraction of positions masked per sequence.</summary>
    public double MaskFraction { get; init; } = 0.15;
    /// <summary>Seeds data order and dropout (the model's init has its own seed in the model config).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Checks every field; the message names the field and the problem.</summary>
    /// <exception cref="ArgumentException">A field is out of range.</exception>
    public void Validate()
    {
        Require(Steps >= 1, "steps", $"must be at least 1 (got {Steps})");
        Require(BatchSize >= 1, "batch_size", $"must be at least 1 (got {BatchSize})");
        Require(Tokens is null or >= 1, "tokens", $"must be at least 1 (got {Tokens})");
        Require(AccumulationSteps >= 1, "accumulation_steps", $"must be at least 1 (got {AccumulationSteps})");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), "learning_rate", $"must be positive and finite (got {LearningRate})");
        Require(MinLearningRate >= 0 && MinLearningRate <= LearningRate, "min_learning_rate", $"must be in [0, learning_rate] (got {MinLearningRate})");
        Require(WarmupSteps >= 0, "warmup_steps", $"must not be negative (got {WarmupSteps})");
        Require(WeightDecay >= 0 && float.IsFinite(WeightDecay), "weight_decay", $"must be non-negative and finite (got {WeightDecay})");
        Require(Beta1 is >= 0 and < 1, "beta1", $"must be in [0, 1) (got {Beta1})");
        Require(Beta2 is >= 0 and < 1, "beta2", $"must be in [0, 1) (got {Beta2})");
        Require(Epsilon > 0 && float.IsFinite(Epsilon), "epsilon", $"must be positive and finite (got {Epsilon})");
        Require(GradientClip >= 0 && float.IsFinite(GradientClip), "gradient_clip", $"must be non-negative and finite (got {GradientClip})");
        Require(ValidationFraction is > 0 and < 1, "validation_fraction", $"must be in (0, 1) (got {ValidationFraction})");
        Require(EvalEvery >= 0, "eval_every", $"must not be negative (got {EvalEvery})");
        Require(EvalBatches >= 1, "eval_batches", $"must be at least 1 (got {EvalBatches})");
        Require(CheckpointEvery >= 0, "checkpoint_every", $"must not be negative (got {CheckpointEvery})");
        Require(LogEvery >= 1, "log_every", $"must be at least 1 (got {LogEvery})");
        Require(MonitorEvery >= 0, "monitor_every", $"must not be negative (got {MonitorEvery})");
        Require(MonitorFactor > 1 && double.IsFinite(MonitorFactor), "monitor_factor", $"must be finite and above 1 (got {MonitorFactor})");
        Require(MaskFraction is > 0 and < 1, "mask_fraction", $"must be in (0, 1) (got {MaskFraction})");
    }

    private static void Require(bool condition, string field, string problem)
    {
        if (!condition) throw new ArgumentException($"training options: {field} {problem}", field);
    }

    /// <summary>These options as JSON (snake_case).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, TrainingOptionsJsonContext.Snake.TrainingOptions);

    /// <summary>Options from JSON (missing fields take their defaults), validated.</summary>
    /// <exception cref="ArgumentException">The JSON is malformed, names an unknown field, or a value is invalid.</exception>
    public static TrainingOptions FromJson(string json)
    {
        var options = ConfigJson.Read(json, "training options", new TrainingOptions().ToJson(), TrainingOptionsJsonContext.Snake.TrainingOptions);
        options.Validate();
        return options;
    }
}

/// <summary>Source-generated JSON for <see cref="TrainingOptions"/> (trimming- and AOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(TrainingOptions))]
internal sealed partial class TrainingOptionsJsonContext : JsonSerializerContext
{
    /// <summary>The context with snake_case enum values as well.</summary>
    public static TrainingOptionsJsonContext Snake { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter<ScheduleKind>(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    });
}
