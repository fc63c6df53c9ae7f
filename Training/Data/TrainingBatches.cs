using DeepScaleLM.Layers;

namespace DeepScaleLM.Training.Data;

/// <summary>
/// Turns windows of a token file into the (tokens, targets, source tokens) a <see cref="TransformerModel"/> reads,
/// for each model kind, as a pure function of (seed, draw index): a resumed run sees exactly the batches of an
/// uninterrupted one. Holds the host arrays of one batch, reused every draw (no allocation per step).
/// <list type="bullet">
/// <item>Decoder: window w of T + 1 ids; tokens = w[0..T), targets = w[1..T] (next-token prediction).</item>
/// <item>Encoder (masked LM, BERT): window of T ids; each position is masked with probability
/// <see cref="TrainingOptions.MaskFraction"/> (a SplitMix64 hash of seed, draw, row and position): its token becomes
/// the mask id (the model's last vocabulary id, which the tokenizer never produces) and its target the original id;
/// unmasked positions have target -100. Every sequence masks at least one position.</item>
/// <item>Encoder-decoder (continuation): window of 2T + 1 ids; source = w[0..T), decoder tokens = w[T..2T),
/// targets = w[T+1..2T]: the decoder predicts the text that follows the source.</item>
/// </list>
/// </summary>
public sealed class TrainingBatches
{
    private readonly BatchSampler _sampler;
    private readonly int[] _windows;

    /// <summary>Batches of <paramref name="batchSize"/> x <paramref name="tokens"/> for <paramref name="config"/> drawn from
    /// <paramref name="range"/> of <paramref name="source"/>.</summary>
    /// <exception cref="ArgumentException">The token file's vocabulary does not fit the model (for a masked LM it must
    /// leave the last id free for the mask), or the range is shorter than one window.</exception>
    public TrainingBatches(TokenFileReader source, TokenRange range, ModelConfig config, int batchSize, int tokens, double maskFraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(config);
        Kind = config.Kind;
        int usable = Kind == ModelKind.Encoder ? config.Vocabulary - 1 : config.Vocabulary;
        if (source.VocabularySize > usable)
            throw new ArgumentException(Kind == ModelKind.Encoder
                ? $"'{source.FilePath}' has a vocabulary of {source.VocabularySize}; a masked LM needs vocabulary >= {source.VocabularySize + 1} (the last id is the mask), the model has {config.Vocabulary}"
                : $"'{source.FilePath}' has a vocabulary of {source.VocabularySize}, more than the model's {config.Vocabulary}", nameof(config));
        // Window length minus one, as BatchSampler counts it (it always adds the one target id).
        int sampled = Kind switch { ModelKind.Decoder => tokens, ModelKind.Encoder => tokens - 1, _ => 2 * tokens };
        _sampler = new BatchSampler(source, range, batchSize, Math.Max(sampled, 1), seed);
        _windows = new int[batchSize * (_sampler.Tokens + 1)];
        BatchSize = batchSize;
        Tokens = tokens;
        MaskFraction = maskFraction;
        MaskId = config.Vocabulary - 1;
        Seed = seed;
        Inputs = new int[batchSize * tokens];
        Targets = new int[batchSize * tokens];
        SourceTokens = Kind == ModelKind.EncoderDecoder ? new int[batchSize * tokens] : [];
    }

    /// <summary>The model kind the batches are for.</summary>
    public ModelKind Kind { get; }
    /// <summary>Sequences per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Positions per sequence.</summary>
    public int Tokens { get; }
    /// <summary>Masked-LM mask probability.</summary>
    public double MaskFraction { get; }
    /// <summary>Masked-LM mask token id (the model's last id).</summary>
    public int MaskId { get; }
    /// <summary>The seed of windows and masks.</summary>
    public ulong Seed { get; }
    /// <summary>[batch * tokens] model input ids of the last draw.</summary>
    public int[] Inputs { get; }
    /// <summary>[batch * tokens] targets of the last draw (-100: ignored).</summary>
    public int[] Targets { get; }
    /// <summary>[batch * tokens] encoder input ids of the last draw (encoder-decoder only; empty otherwise).</summary>
    public int[] SourceTokens { get; }

    /// <summary>Fills <see cref="Inputs"/>, <see cref="Targets"/> and <see cref="SourceTokens"/> with batch number <paramref name="draw"/>.</summary>
    public void Draw(long draw)
    {
        _sampler.Sample(draw, _windows);
        int width = _sampler.Tokens + 1, t = Tokens;
        for (int row = 0; row < BatchSize; row++)
        {
            var window = _windows.AsSpan(row * width, width);
            var inputs = Inputs.AsSpan(row * t, t);
            var targets = Targets.AsSpan(row * t, t);
            switch (Kind)
            {
                case ModelKind.Decoder:
                    window[..t].CopyTo(inputs);
                    window[1..(t + 1)].CopyTo(targets);
                    break;
                case ModelKind.EncoderDecoder:
                    window[..t].CopyTo(SourceTokens.AsSpan(row * t, t));
                    window[t..(2 * t)].CopyTo(inputs);
                    window[(t + 1)..(2 * t + 1)].CopyTo(targets);
                    break;
                default:
                    Mask(window[..t], inputs, targets, draw, row);
                    break;
            }
        }
    }

    private void Mask(ReadOnlySpan<int> window, Span<int> inputs, Span<int> targets, long draw, int row)
    {
        // Threshold on the top 53 bits: position p is masked iff u(seed, draw, row, p) < fraction.
        ulong threshold = (ulong)(MaskFraction * (1UL << 53));
        int masked = 0;
        for (int p = 0; p < window.Length; p++)
        {
            bool mask = (Hash(draw, row, p) >> 11) < threshold;
            inputs[p] = mask ? MaskId : window[p];
            targets[p] = mask ? window[p] : -100;
            masked += mask ? 1 : 0;
        }
        if (masked > 0) return;
        // A sequence without a masked position would carry no loss: mask one, chosen by the same hash.
        int chosen = (int)(Hash(draw, row, -1) % (ulong)window.Length);
        inputs[chosen] = MaskId;
        targets[chosen] = window[chosen];
    }

    // The mask stream is keyed apart from the window stream ("mask" xor the seed).
    private ulong Hash(long draw, int row, int position) =>
        BatchSampler.Mix(BatchSampler.Mix(BatchSampler.Mix(BatchSampler.Mix(Seed ^ 0x6D61736BUL) ^ (ulong)draw) ^ (ulong)row) ^ (ulong)(uint)position);
}
