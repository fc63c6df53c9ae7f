namespace DeepScaleLM.Native;

/// <summary>Hyper-parameters of one AdamW step (Loshchilov &amp; Hutter 2019: decoupled weight decay).</summary>
/// <param name="LearningRate">Step size (after any schedule).</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Epsilon">Added to the square root of the second moment.</param>
/// <param name="WeightDecay">Decoupled decay: <c>param -= lr * weightDecay * param</c>.</param>
public readonly record struct AdamWOptions(float LearningRate, float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-8f, float WeightDecay = 0f);
