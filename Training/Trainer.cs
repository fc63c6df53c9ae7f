using System.Diagnostics;
using System.Text;
using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Evaluation;
using DeepScaleLM.Training.Optimization;
using DeepScaleLM.Training.Precision;

namespace DeepScaleLM.Training;

/// <summary>What one optimizer step did.</summary>
/// <param name="Step">Steps completed, this one included (1-based).</param>
/// <param name="Loss">Mean training loss over the step's micro-batches (nats per target token).</param>
/// <param name="LearningRate">The learning rate the step used.</param>
/// <param name="GradientNorm">Global norm of the (unscaled) gradient before clipping; not finite on a skipped fp16 step.</param>
/// <param name="LossScale">The loss scale the step used (1 without fp16 loss scaling).</param>
/// <param name="Skipped">True when an fp16 overflow skipped the update (weights and moments untouched).</param>
/// <param name="Tokens">Input tokens the step consumed.</param>
public readonly record struct StepResult(long Step, double Loss, double LearningRate, double GradientNorm, double LossScale, bool Skipped, int Tokens);

/// <summary>A non-finite loss or gradient in a run that has no loss scaling to absorb it: training has diverged.</summary>
public sealed class TrainingDivergedException(string message) : InvalidOperationException(message);

/// <summary>
/// Trains a <see cref="TransformerModel"/> on a token file: AdamW (decoupled weight decay on the matrices only) over
/// flat fp32 moments, warmup + cosine/linear decay, global-norm clipping, gradient accumulation, dropout, fp16
/// dynamic loss scaling, evaluation on the validation tail, and checkpoints that resume bit for bit.
/// </summary>
/// <remarks>
/// Determinism: everything a step reads is a function of (seeds, step): the batches (<see cref="TrainingBatches"/>
/// draw <c>(step - 1) * accumulation + micro</c>), the dropout masks (Philox offset = the same draw index), the learning
/// rate, and the state saved in a checkpoint (weights, moments, optimizer step, loss scaler). The same seed on the same
/// backend therefore gives the same losses bit for bit, also across a resume.
/// Nothing is allocated per step beyond what the backend does: batches, moments and the accumulation buffer are made once.
/// </remarks>
public sealed class Trainer : IDisposable
{
    private readonly Tensor _firstMoment, _secondMoment;
    private readonly Tensor? _accumulated;
    private readonly OptimizedParameter[] _parameters;
    private readonly TrainingBatches _train;
    private readonly TrainingBatches _validation;
    private readonly ITokenizer _tokenizer;
    private readonly ILearningRateSchedule _schedule;
    private readonly DynamicLossScaler? _lossScaler;
    private readonly Stopwatch _clock = new();
    private double _elapsedBefore;

    private Trainer(TransformerModel model, TrainingOptions options, TokenFileReader data, TokenizerSpec tokenizer,
        DynamicLossScaler? lossScaler, double dataTokenCorrelation)
    {
        Model = model;
        Options = options;
        Tokenizer = tokenizer;
        _tokenizer = tokenizer.Create();
        var backend = model.Backend;
        var split = DataSplit.Of(data.Count, options.ValidationFraction);
        DataTokenCorrelation = dataTokenCorrelation;
        _train = new TrainingBatches(data, split.Train, model.Config, model.BatchSize, model.Tokens, options.MaskFraction, options.Seed);
        // Made now, so a validation tail too short for one window fails here rather than at the first evaluation; the
        // windows are fixed (a seed of their own, draws 0, 1, ...), the same at every evaluation and across resumes.
        _validation = new TrainingBatches(data, split.Validation, model.Config, model.BatchSize, model.Tokens, options.MaskFraction,
            options.Seed ^ 0x76616C6964UL);
        int count = checked((int)model.ParameterCount);
        _firstMoment = backend.Allocate(count);
        _secondMoment = backend.Allocate(count);
        backend.Zero(_firstMoment);
        backend.Zero(_secondMoment);
        _accumulated = options.AccumulationSteps > 1 ? backend.Allocate(count) : null;
        var gradients = _accumulated ?? model.Gradients;
        // Views of the flat buffers at each parameter's place, so AdamW runs per parameter with its own decay.
        _parameters = [.. model.NamedParameters.Select(p =>
        {
            long at = p.Value.Offset - model.Parameters.Offset;
            int[] dims = p.Value.Shape.Dimensions.ToArray();
            return new OptimizedParameter(p.Value, gradients.Slice(at, dims), _firstMoment.Slice(at, dims), _secondMoment.Slice(at, dims),
                p.DecayWeight ? options.WeightDecay : 0f);
        })];
        // A run shorter than its warmup warms up over the whole run.
        int warmup = Math.Min(options.WarmupSteps, options.Steps);
        _schedule = options.Schedule switch
        {
            ScheduleKind.Cosine => new WarmupCosineSchedule(options.LearningRate, options.MinLearningRate, warmup, options.Steps),
            ScheduleKind.Linear => new WarmupLinearSchedule(options.LearningRate, options.MinLearningRate, warmup, options.Steps),
            _ => new WarmupLinearSchedule(options.LearningRate, options.LearningRate, warmup, options.Steps),
        };
        _lossScaler = lossScaler;
    }

    /// <summary>
    /// A new run: a freshly initialised model for <paramref name="config"/> trained on <paramref name="data"/>. A
    /// position-aware init (<see cref="InitScheme.DslmPosition"/>) without a token correlation gets the training split's
    /// (<see cref="UnigramStatistics.CollisionProbability"/>), recorded in the model's config.
    /// </summary>
    /// <param name="backend">Where the model lives.</param>
    /// <param name="config">The model (validated here).</param>
    /// <param name="options">The run (validated here).</param>
    /// <param name="data">Token file; its tail (<see cref="TrainingOptions.ValidationFraction"/>) is validation. The trainer
    /// reads it but does not own it.</param>
    /// <param name="tokenizer">The tokenizer that made <paramref name="data"/> (recorded in checkpoints; used for bits per byte).</param>
    /// <exception cref="ArgumentException">A config or option is invalid, the data does not fit the model, or a split is
    /// shorter than one window.</exception>
    public static Trainer Create(Backend backend, ModelConfig config, TrainingOptions options, TokenFileReader data, TokenizerSpec tokenizer)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(tokenizer);
        config.Validate();
        options.Validate();
        double dataTokenCorrelation = TrainingTokenCorrelation(data, options);
        // The data-aware init designs for the data's r0 (open-problems.md): the training split's unigram statistics,
        // recorded in the config (and so in checkpoints), not the i.i.d.-uniform default.
        if (config.Init == InitScheme.DslmPosition && config.TokenCorrelation is null)
            config = config with { TokenCorrelation = dataTokenCorrelation };
        int tokens = ContextLength(config, options);
        var model = TransformerModel.Create(backend, config, options.BatchSize, tokens);
        try
        {
            var scaler = config.Precision == ComputePrecision.Fp16
                ? new DynamicLossScaler(DynamicLossScaler.InitialScale([PredictedGradientStd(config, options.BatchSize * tokens)]))
                : null;
            return new Trainer(model, options, data, tokenizer, scaler, dataTokenCorrelation);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>r0 of the training split as the model embeds it (<see cref="DataTokenCorrelation"/>).</summary>
    private static double TrainingTokenCorrelation(TokenFileReader data, TrainingOptions options) =>
        ModelConfig.TokenCorrelationOf(UnigramStatistics.CollisionProbability(data, DataSplit.Of(data.Count, options.ValidationFraction).Train));

    /// <summary>
    /// Continues the run saved in <paramref name="checkpoint"/>: its model, options (with <paramref name="steps"/>, when
    /// given, as the new total), weights, AdamW moments, step and loss scaler. The data must be the token file of the
    /// original run for the losses to continue exactly.
    /// </summary>
    /// <exception cref="CheckpointFormatException">A checkpoint file is missing, truncated, corrupt or from another model.</exception>
    /// <exception cref="ArgumentException">The data does not fit the model, or the new total is not after the saved step.</exception>
    public static Trainer Resume(Backend backend, string checkpoint, TokenFileReader data, int? steps = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(data);
        var state = TrainingCheckpoint.ReadState(checkpoint);
        var config = ModelCheckpoint.ReadConfig(checkpoint);
        var options = ModelCheckpoint.ReadJson(checkpoint, TrainingCheckpoint.OptionsFile, TrainingOptions.FromJson);
        if (state.Seed != options.Seed)
            throw new CheckpointFormatException(Path.Combine(checkpoint, CheckpointDirectory.TrainerStateFile),
                $"seed {state.Seed} differs from the seed {options.Seed} in {TrainingCheckpoint.OptionsFile}");
        if (steps is int total)
        {
            if (total <= state.Step)
                throw new ArgumentException($"--steps {total} is not after the checkpoint's step {state.Step}", nameof(steps));
            options = options with { Steps = total };
        }
        var model = TransformerModel.Create(backend, config, options.BatchSize, ContextLength(config, options));
        Trainer? trainer = null;
        try
        {
            var scaler = state.LossScaler is { } saved ? new DynamicLossScaler(saved) : null;
            trainer = new Trainer(model, options, data, state.Tokenizer, scaler, TrainingTokenCorrelation(data, options));
            ModelCheckpoint.ReadWeights(model, checkpoint);
            var first = new float[model.ParameterCount];
            var second = new float[model.ParameterCount];
            TrainingCheckpoint.ReadOptimizerMoments(checkpoint, state, trainer.ParameterShapes(), first, second);
            backend.Upload<float>(trainer._firstMoment, first);
            backend.Upload<float>(trainer._secondMoment, second);
            trainer.Step = state.Step;
            trainer.OptimizerStep = state.OptimizerStep;
            trainer.TokensSeen = state.TokensSeen;
            trainer._elapsedBefore = state.ElapsedSeconds;
            return trainer;
        }
        catch
        {
            if (trainer is not null) trainer.Dispose();
            else model.Dispose();
            throw;
        }
    }

    /// <summary>The model being trained (owned by the trainer).</summary>
    public TransformerModel Model { get; }

    /// <summary>
    /// r0 of the training split as the model embeds it: its unigram collision probability over the token + position
    /// tables (<see cref="ModelConfig.TokenCorrelationOf"/>). The input the theory's predictions of this run take,
    /// whatever r0 the init was designed for.
    /// </summary>
    public double DataTokenCorrelation { get; }

    /// <summary>The run's options.</summary>
    public TrainingOptions Options { get; }

    /// <summary>The tokenizer that made the data.</summary>
    public TokenizerSpec Tokenizer { get; }

    /// <summary>Steps completed, skipped fp16 steps included.</summary>
    public long Step { get; private set; }

    /// <summary>AdamW updates applied (its bias-correction t): <see cref="Step"/> less the skipped steps.</summary>
    public long OptimizerStep { get; private set; }

    /// <summary>Training input tokens consumed.</summary>
    public long TokensSeen { get; private set; }

    /// <summary>Training wall time, across resumes.</summary>
    public double ElapsedSeconds => _elapsedBefore + _clock.Elapsed.TotalSeconds;

    /// <summary>The fp16 loss scale (1 when the run does not scale the loss).</summary>
    public double LossScale => _lossScaler?.Scale ?? 1;

    /// <summary>Whether <see cref="Step"/> has reached <see cref="TrainingOptions.Steps"/>.</summary>
    public bool Finished => Step >= Options.Steps;

    /// <summary>
    /// One optimizer step: <see cref="TrainingOptions.AccumulationSteps"/> micro-batches forward and backward (gradients
    /// of the mean loss summed), then, unless an fp16 overflow skips it, clip and AdamW at this step's learning rate.
    /// </summary>
    /// <exception cref="InvalidOperationException">The run is finished.</exception>
    /// <exception cref="TrainingDivergedException">The loss or the gradient is not finite and there is no loss scaling to
    /// absorb it (nothing is updated).</exception>
    /// <exception cref="LossScaleCollapsedException">fp16 gradients overflow even at the smallest loss scale.</exception>
    public StepResult TrainStep()
    {
        if (Finished) throw new InvalidOperationException($"the run is finished ({Step} of {Options.Steps} steps)");
        _clock.Start();
        try
        {
            return TrainStepCore();
        }
        finally
        {
            _clock.Stop();
        }
    }

    private StepResult TrainStepCore()
    {
        var backend = Model.Backend;
        long step = Step + 1;
        int micro = Options.AccumulationSteps;
        double lossScale = LossScale;
        double loss = 0;
        for (int m = 0; m < micro; m++)
        {
            long draw = (step - 1) * micro + m;
            _train.Draw(draw);
            loss += Model.Forward(_train.Inputs, _train.Targets, _train.SourceTokens, training: true, Options.Seed, (ulong)draw);
            // Each micro-batch contributes the gradient of its mean loss / micro: the sum is the step's mean.
            Model.Backward((float)(lossScale / micro));
            if (_accumulated is not null)
            {
                if (m == 0) backend.Copy(_accumulated, Model.Gradients);
                else backend.ResidualBackward(_accumulated, null, Model.Gradients, 1f, 0f); // accumulated += gradients
            }
        }
        loss /= micro;
        var gradients = _accumulated ?? Model.Gradients;
        double scaledNorm = backend.GlobalNorm(gradients);
        double learningRate = _schedule.LearningRate(checked((int)step));
        int tokens = micro * Model.BatchSize * Model.Tokens;
        Step = step;
        TokensSeen += tokens;
        if (_lossScaler is not null)
        {
            if (_lossScaler.Update(scaledNorm) == LossScaleOutcome.SkippedOverflow)
                return new StepResult(step, loss, learningRate, double.PositiveInfinity, lossScale, Skipped: true, tokens);
        }
        else if (!double.IsFinite(loss) || !double.IsFinite(scaledNorm))
        {
            Step--;
            TokensSeen -= tokens;
            throw new TrainingDivergedException(
                $"training diverged at step {step}: loss {loss}, gradient norm {scaledNorm} (not finite); the weights were not updated and saved checkpoints are untouched — lower the learning rate or use a stabler init (e.g. --init dslm)");
        }
        double norm = scaledNorm / lossScale;
        // Unscale and clip in AdamW's gradient factor: one pass over the gradients instead of three.
        double clip = Options.GradientClip > 0 && norm > Options.GradientClip ? Options.GradientClip / norm : 1;
        float gradientScale = (float)(clip / lossScale);
        OptimizerStep++;
        foreach (var p in _parameters)
        {
            var adam = new AdamWOptions((float)learningRate, Options.Beta1, Options.Beta2, Options.Epsilon, p.WeightDecay);
            backend.AdamW(p.Value, p.Gradient, p.FirstMoment, p.SecondMoment, adam, checked((int)OptimizerStep), gradientScale);
        }
        return new StepResult(step, loss, learningRate, norm, lossScale, Skipped: false, tokens);
    }

    /// <summary>
    /// Loss, perplexity and bits per byte on the validation tail: <see cref="TrainingOptions.EvalBatches"/> batches of
    /// fixed windows (the same at every evaluation and across resumes), no dropout.
    /// </summary>
    public EvaluationMetrics Evaluate()
    {
        var batches = _validation;
        var totals = new EvaluationTotals(_tokenizer);
        for (int b = 0; b < Options.EvalBatches; b++)
        {
            batches.Draw(b);
            totals.Add(Model.Forward(batches.Inputs, batches.Targets, batches.SourceTokens, training: false), batches.Targets);
        }
        return totals.Metrics();
    }

    /// <summary>Writes the whole run state to <paramref name="directory"/> atomically: model.safetensors, config.json,
    /// training.json, trainer-state.json and optimizer.safetensors. A failure leaves the previous checkpoint intact.</summary>
    public void SaveCheckpoint(string directory)
    {
        var backend = Model.Backend;
        byte[] config = Encoding.UTF8.GetBytes(Model.Config.ToJson());
        byte[] options = Encoding.UTF8.GetBytes(Options.ToJson());
        var state = new TrainerState(Step, OptimizerStep, TrainerState.HashConfig(config), Tokenizer, Options.Seed, TokensSeen,
            ElapsedSeconds, _lossScaler?.State);
        var first = new float[Model.ParameterCount];
        var second = new float[Model.ParameterCount];
        backend.Download<float>(first, _firstMoment);
        backend.Download<float>(second, _secondMoment);
        var tensors = Model.NamedParameters.Select(p => (p.Name, p.Value)).ToList();
        TrainingCheckpoint.Write(directory, config, options,
            stream => SafeTensorsFile.Write(stream, backend, tensors, new Dictionary<string, string> { ["format"] = "pt" }),
            state, ParameterShapes(), first, second);
    }

    /// <summary>Releases the model and the optimizer buffers (not the data file).</summary>
    public void Dispose()
    {
        Model.Dispose();
        _firstMoment.Dispose();
        _secondMoment.Dispose();
        _accumulated?.Dispose();
    }

    /// <summary>The context length a run uses: the options' tokens, or the model's sequence length.</summary>
    /// <exception cref="ArgumentException">The options ask for more positions than the model has.</exception>
    public static int ContextLength(ModelConfig config, TrainingOptions options)
    {
        int tokens = options.Tokens ?? config.SequenceLength;
        if (tokens > config.SequenceLength)
            throw new ArgumentException($"training options: tokens {tokens} exceeds the model's sequence_length {config.SequenceLength}", "tokens");
        return tokens;
    }

    /// <summary>
    /// The predicted std of one entry of the residual-stream gradient at init, for the first fp16 loss scale. With the
    /// loss a mean over <paramref name="rows"/> positions and near-uniform softmax at init, a logit gradient entry is
    /// (p - y) / rows with variance about 1 / (V rows^2); the tied head multiplies by logitScale * E, whose variance
    /// sums to V * Var(E) * logitScale^2 = 1 / d under DSLM's logit pre-scale (dslm-theory.md 4.1). So the std is
    /// 1 / (rows sqrt d), and DSLM keeps it flat through depth (section 4), which is why one number serves every layer.
    /// </summary>
    public static double PredictedGradientStd(ModelConfig config, int rows) => 1 / (rows * Math.Sqrt(config.ModelWidth));

    private List<(string Name, int[] Shape)> ParameterShapes() => [.. Model.NamedParameters.Select(p => (p.Name, p.Value.Shape.Dimensions.ToArray()))];

    /// <summary>One parameter's views into the flat value, gradient and moment buffers.</summary>
    private sealed record OptimizedParameter(Tensor Value, Tensor Gradient, Tensor FirstMoment, Tensor SecondMoment, float WeightDecay);
}
