using DeepScaleLM.Layers;

namespace DeepScaleLM.Training.Generation;

/// <summary>
/// Continues a prompt with a decoder model, one token at a time: each step runs the model on the last
/// <c>Tokens</c> ids (a sliding window once the text is longer than the context) and samples the next id from the logits
/// at the last filled position with a <see cref="TokenSampler"/>. Positions after the filled ones hold 0s; causal
/// attention keeps them from influencing the position read.
/// </summary>
public static class TextGenerator
{
    /// <summary>The prompt followed by <paramref name="count"/> generated ids.</summary>
    /// <param name="model">A decoder with batch size 1 (dropout is off during generation).</param>
    /// <param name="prompt">At least one id.</param>
    /// <param name="count">Ids to generate.</param>
    /// <param name="sampler">Temperature, top-k and seed; its vocabulary must be the model's.</param>
    /// <exception cref="ArgumentException">The model is not a batch-1 decoder, the prompt is empty, or the sampler's
    /// vocabulary differs.</exception>
    public static int[] Generate(TransformerModel model, ReadOnlySpan<int> prompt, int count, TokenSampler sampler)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (model.Config.Kind != ModelKind.Decoder)
            throw new ArgumentException($"generation needs a decoder model, this one is {model.Config.Kind}", nameof(model));
        if (model.BatchSize != 1) throw new ArgumentException($"generation runs batch size 1, the model has {model.BatchSize}", nameof(model));
        if (prompt.IsEmpty) throw new ArgumentException("the prompt holds no tokens", nameof(prompt));
        int vocabulary = model.Config.Vocabulary, context = model.Tokens;
        var text = new List<int>(prompt.Length + count);
        text.AddRange(prompt);
        var window = new int[context];
        var ignored = new int[context];
        Array.Fill(ignored, -100);
        var logits = new float[vocabulary];
        for (int i = 0; i < count; i++)
        {
            int filled = Math.Min(text.Count, context);
            Array.Clear(window);
            for (int p = 0; p < filled; p++) window[p] = text[text.Count - filled + p];
            model.Forward(window, ignored, training: false);
            model.LogitsAt(filled - 1, logits);
            text.Add(sampler.Next(logits));
        }
        return [.. text];
    }
}
