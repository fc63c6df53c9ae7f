using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Kernels;

namespace DeepScaleLM.Tests;

/// <summary>
/// The Linear, ReLU and GeLU formulas (dslm-theory.md 2.1-2.3) against a float64 Monte Carlo at one point of the
/// section 5.1 grids each, with a fixed seed. Each estimate is the mean over independent batches, and must lie within
/// four standard errors of the formula.
/// </summary>
public sealed class TheoryMonteCarloTests
{
    private const double Sigmas = 4;

    [Fact]
    public void LinearMatchesSimulation()
    {
        // mu = 1, s = 1, r = 1/3, sw sqrt(d_in) = 1, d_in = d_out = 100, g std 1, rg = 1/3 (a 5.1 grid point).
        const int fanIn = 100, fanOut = 100, runs = 600;
        const double mu = 1, s2 = 1, r = 1.0 / 3, sw2 = 1.0 / fanIn, rg = 1.0 / 3;
        var normal = new Gaussian(42);
        var variance = new Estimate(); var covariance = new Estimate();
        var gradVariance = new Estimate(); var gradCovariance = new Estimate();
        var weights = new double[fanIn, fanOut];
        var x = new double[2, fanIn];
        var g = new double[2, fanOut];
        for (int run = 0; run < runs; run++)
        {
            for (int a = 0; a < fanIn; a++)
                for (int b = 0; b < fanOut; b++) weights[a, b] = Math.Sqrt(sw2) * normal.Next();
            FillCorrelatedPair(normal, x, mu, s2, r);
            FillCorrelatedPair(normal, g, 0, 1, rg);
            double ySquares = 0, yProducts = 0, dxSquares = 0, dxProducts = 0;
            for (int b = 0; b < fanOut; b++)
            {
                double y0 = 0, y1 = 0;
                for (int a = 0; a < fanIn; a++) { y0 += x[0, a] * weights[a, b]; y1 += x[1, a] * weights[a, b]; }
                ySquares += (y0 * y0 + y1 * y1) / 2; yProducts += y0 * y1;
            }
            for (int a = 0; a < fanIn; a++)
            {
                double dx0 = 0, dx1 = 0;
                for (int b = 0; b < fanOut; b++) { dx0 += weights[a, b] * g[0, b]; dx1 += weights[a, b] * g[1, b]; }
                dxSquares += (dx0 * dx0 + dx1 * dx1) / 2; dxProducts += dx0 * dx1;
            }
            // Both means are exactly 0 (zero-mean weights), so second moments are the variance and covariance.
            variance.Add(ySquares / fanOut); covariance.Add(yProducts / fanOut);
            gradVariance.Add(dxSquares / fanIn); gradCovariance.Add(dxProducts / fanIn);
        }
        var linear = new Linear(fanIn, fanOut, sw2);
        var input = new SignalMoments(mu, s2, r);
        var forward = linear.Forward(input);
        var backward = linear.Backward(input, new GradientMoments(1, rg));
        variance.AssertMatches(forward.Variance, "Linear variance");
        covariance.AssertMatches(forward.Covariance, "Linear covariance");
        gradVariance.AssertMatches(backward.Variance, "Linear gradient variance");
        gradCovariance.AssertMatches(backward.Covariance, "Linear gradient covariance");
    }

    [Fact]
    public void ReluMatchesSimulation() =>
        AssertActivationMatches(new Relu(), x => Math.Max(x, 0), x => x > 0 ? 1 : 0, s2: 1, r: 0.6, rg: 0.4, seed: 7);

    [Fact]
    public void GeluMatchesSimulation() =>
        AssertActivationMatches(new Gelu(), x => x / 2 * (1 + Erf(x / Math.Sqrt(2))),
            x => (1 + Erf(x / Math.Sqrt(2))) / 2 + x * Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI), s2: Math.Sqrt(10), r: 0.4, rg: 0.6, seed: 11);

    /// <summary>
    /// Pairs (x_i, x_j) of two tokens with variance s2 and correlation r, and an independent gradient pair with rg; the
    /// activation's forward mean, variance and covariance and its backward variance and covariance, each over 20 batches.
    /// </summary>
    private static void AssertActivationMatches(IMomentMap activation, Func<double, double> function, Func<double, double> derivative,
        double s2, double r, double rg, int seed)
    {
        const int batches = 20, batchSize = 10_000;
        var normal = new Gaussian(seed);
        var mean = new Estimate(); var variance = new Estimate(); var covariance = new Estimate();
        var gradVariance = new Estimate(); var gradCovariance = new Estimate();
        var y = new double[2, batchSize];
        var pair = new double[2, 1];
        for (int batch = 0; batch < batches; batch++)
        {
            double gradSquares = 0, gradProducts = 0;
            for (int n = 0; n < batchSize; n++)
            {
                FillCorrelatedPair(normal, pair, 0, s2, r);
                double x0 = pair[0, 0], x1 = pair[1, 0];
                y[0, n] = function(x0); y[1, n] = function(x1);
                FillCorrelatedPair(normal, pair, 0, 1, rg);
                double d0 = pair[0, 0] * derivative(x0), d1 = pair[1, 0] * derivative(x1);
                gradSquares += (d0 * d0 + d1 * d1) / 2; gradProducts += d0 * d1;
            }
            double batchMean = 0;
            for (int n = 0; n < batchSize; n++) batchMean += (y[0, n] + y[1, n]) / (2.0 * batchSize);
            double squares = 0, products = 0;
            for (int n = 0; n < batchSize; n++)
            {
                double c0 = y[0, n] - batchMean, c1 = y[1, n] - batchMean;
                squares += (c0 * c0 + c1 * c1) / 2; products += c0 * c1;
            }
            mean.Add(batchMean); variance.Add(squares / (batchSize - 1)); covariance.Add(products / (batchSize - 1));
            gradVariance.Add(gradSquares / batchSize); gradCovariance.Add(gradProducts / batchSize);
        }
        var input = new SignalMoments(0, s2, r);
        var forward = activation.Forward(input);
        var backward = activation.Backward(input, new GradientMoments(1, rg));
        string name = activation.GetType().Name;
        mean.AssertMatches(forward.Mean, $"{name} mean");
        variance.AssertMatches(forward.Variance, $"{name} variance");
        covariance.AssertMatches(forward.Covariance, $"{name} covariance");
        gradVariance.AssertMatches(backward.Variance, $"{name} gradient variance");
        gradCovariance.AssertMatches(backward.Covariance, $"{name} gradient covariance");
    }

    /// <summary>
    /// values[t, k] = mu + sqrt(s2) (sqrt(r) shared_k + sqrt(1 - r) own_{t,k}) for two tokens t: one common mean, equal
    /// variances and cross-token correlation r, as the official simulations draw their inputs (dslm-theory.md 1).
    /// </summary>
    private static void FillCorrelatedPair(Gaussian normal, double[,] values, double mu, double s2, double r)
    {
        double s = Math.Sqrt(s2), shared = Math.Sqrt(r), own = Math.Sqrt(1 - r);
        for (int k = 0; k < values.GetLength(1); k++)
        {
            double common = normal.Next();
            values[0, k] = mu + s * (shared * common + own * normal.Next());
            values[1, k] = mu + s * (shared * common + own * normal.Next());
        }
    }

    /// <summary>erf in float64 by its everywhere-convergent series 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (2n+1)!!,
    /// whose terms are all positive (no cancellation); |erf| rounds to 1 beyond |x| = 6.</summary>
    private static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax > 6) return Math.Sign(x);
        double x2 = ax * ax, term = ax, sum = ax;
        for (int n = 1; term > 1e-17 * sum; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
        }
        return Math.Sign(x) * 2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum;
    }

    /// <summary>Standard normals from a seeded generator by Box-Muller, both outputs used.</summary>
    [Theory]
    [InlineData(0.0, 0.3)]   // Post-LN: the skip is a LayerNorm output (every token of norm sqrt(d))
    [InlineData(1.0, 0.3)]   // Pre-LN: a Gaussian skip
    [InlineData(0.0, 0.05)]  // a deep model's small beta
    public void CombinedNormFluctuationMatchesSimulation(double skipFluctuation, double beta)
    {
        // s = lam x + beta f over d = 64 channels; x either LN(g) (norm exactly sqrt(d)) or g, f ~ N(0, 1.5). The
        // relative variance of |s|^2 / d, times d / 2, is the fraction of a Gaussian's fluctuation; batches of 2000 tokens.
        const int d = 64, batches = 60, tokens = 2000;
        const double branchVariance = 1.5;
        var residual = new ResidualScaling(Math.Sqrt(1 - beta * beta), beta);
        var normal = new Gaussian(7);
        var fraction = new Estimate();
        var x = new double[d];
        for (int batch = 0; batch < batches; batch++)
        {
            var squaredNorms = new double[tokens];
            for (int t = 0; t < tokens; t++)
            {
                for (int c = 0; c < d; c++) x[c] = normal.Next();
                if (skipFluctuation == 0)
                {
                    double mean = x.Average(), std = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / d);
                    for (int c = 0; c < d; c++) x[c] = (x[c] - mean) / std;
                }
                double norm = 0;
                for (int c = 0; c < d; c++)
                {
                    double value = residual.Skip * x[c] + residual.Branch * Math.Sqrt(branchVariance) * normal.Next();
                    norm += value * value;
                }
                squaredNorms[t] = norm / d;
            }
            double average = squaredNorms.Average();
            double relativeVariance = squaredNorms.Sum(v => (v - average) * (v - average)) / (tokens - 1) / (average * average);
            fraction.Add(relativeVariance * d / 2);
        }
        fraction.AssertMatches(residual.NormFluctuation(1, skipFluctuation, branchVariance), "norm fluctuation fraction");
    }

    [Fact]
    public void LayerNormShrinksAPostLnStreamsCorrelationByItsNormFluctuation()
    {
        // Two tokens sharing r = 0.4 of their Gaussian channels, d = 32. One LayerNorm of the Gaussian pair shrinks the
        // correlation by about r/d (official form) or r (1 - r^2) / (2 (d - 1)) (exact). A Post-LN stream built from
        // it, s = lam LN(x) + beta f with a fresh Gaussian f per token (beta = 0.3), has almost no norm fluctuation, so
        // its LayerNorm changes the correlation by far less than a Gaussian input's r/d (0.011 here): the formula
        // predicts 0.0019 (NormFluctuation ~0.17), and the measurement is about -0.001, because centring the fresh branch
        // also raises r by ~beta^2 r / d, an effect of the same small order that the fraction does not model.
        const int d = 32, batches = 40, pairs = 4000;
        const double r = 0.4, beta = 0.3;
        var residual = new ResidualScaling(Math.Sqrt(1 - beta * beta), beta);
        var normal = new Gaussian(9);
        var once = new Estimate();
        var stream = new Estimate();
        var shrink = new Estimate();
        var a = new double[d];
        var b = new double[d];
        double Correlation() => a.Zip(b, (x, y) => x * y).Sum() / d;
        for (int batch = 0; batch < batches; batch++)
        {
            double sumOnce = 0, sumStream = 0, sumNorms = 0, sumAfter = 0;
            for (int pair = 0; pair < pairs; pair++)
            {
                for (int c = 0; c < d; c++)
                {
                    double shared = Math.Sqrt(r) * normal.Next();
                    a[c] = shared + Math.Sqrt(1 - r) * normal.Next();
                    b[c] = shared + Math.Sqrt(1 - r) * normal.Next();
                }
                Normalize(a);
                Normalize(b);
                sumOnce += Correlation();
                for (int c = 0; c < d; c++)
                {
                    a[c] = residual.Skip * a[c] + residual.Branch * normal.Next();
                    b[c] = residual.Skip * b[c] + residual.Branch * normal.Next();
                }
                // The stream's correlation as the theory defines it, a ratio of expectations: E[a.b] / E[|a| |b|].
                sumStream += Correlation();
                sumNorms += Math.Sqrt(a.Sum(x => x * x) * b.Sum(x => x * x)) / d;
                Normalize(a);
                Normalize(b);
                sumAfter += Correlation();
            }
            once.Add(sumOnce / pairs);
            stream.Add(sumStream / sumNorms);
            shrink.Add(sumStream / sumNorms - sumAfter / pairs);
        }
        // One LayerNorm of Gaussians: between the official and the exact form.
        double official = new LayerNorm(d).Forward(new SignalMoments(0, 1, r)).Correlation;
        double exact = r * (1 - (1 - r * r) / (2 * (d - 1)));
        Assert.InRange(once.Mean, official - 0.002, exact + 0.002);
        // The Post-LN stream's LayerNorm: both the measured change and the formula's stay within a sixth of the Gaussian
        // shrinkage rs/d (the recursion once applied that full amount at every Post-LN LayerNorm).
        double fluctuation = residual.NormFluctuation(1, 0, 1), rs = stream.Mean, gaussian = rs / d;
        double predicted = rs - new LayerNorm(d) { NormFluctuation = fluctuation }.Forward(new SignalMoments(0, 1, rs)).Correlation;
        Assert.InRange(predicted, 0, gaussian / 5);
        Assert.InRange(shrink.Mean, -gaussian / 6 - 3 * shrink.StandardError, gaussian / 6 + 3 * shrink.StandardError);
    }

    /// <summary>
    /// Softmax weight moments (<see cref="Softmax.WeightMoments"/>) against softmax over sampled i.i.d. Gaussian logits:
    /// few keys, where 2.7's many-key forms are far off (at 2 keys and s2 = 1 they say 1.36 for E[sum p^2], truth 0.64).
    /// </summary>
    [Theory]
    [InlineData(2, 1.0)]
    [InlineData(3, 0.3)]
    [InlineData(10, 2.0)]
    public void SoftmaxWeightMomentsMatchSimulation(int keys, double logitVariance)
    {
        const int batches = 40, perBatch = 5000;
        var normal = new Gaussian(7 + keys);
        var (squares, tiltedMean, tiltedSquares, cubes, quartics) = (new Estimate(), new Estimate(), new Estimate(), new Estimate(), new Estimate());
        var fourths = new Estimate();
        var z = new double[keys];
        var w = new double[keys];
        for (int batch = 0; batch < batches; batch++)
        {
            double f = 0, g = 0, h = 0, c = 0, q = 0, e4 = 0;
            for (int sample = 0; sample < perBatch; sample++)
            {
                for (int j = 0; j < keys; j++) z[j] = normal.Next();
                double max = z.Max(), total = 0;
                for (int j = 0; j < keys; j++) total += w[j] = Math.Exp(Math.Sqrt(logitVariance) * (z[j] - max));
                double mean = 0, squareSum = 0;
                for (int j = 0; j < keys; j++)
                {
                    double p = w[j] / total;
                    f += p * p;
                    squareSum += p * p;
                    c += p * p * p;
                    e4 += p * p * p * p;
                    h += p * p * z[j] * z[j];
                    mean += p * z[j];
                }
                g += mean * mean;
                q += squareSum * squareSum;
            }
            squares.Add(f / perBatch);
            tiltedMean.Add(g / perBatch);
            tiltedSquares.Add(h / perBatch);
            cubes.Add(c / perBatch);
            quartics.Add(q / perBatch);
            fourths.Add(e4 / perBatch);
        }
        var moments = Softmax.WeightMoments(keys, logitVariance);
        squares.AssertMatches(moments.SquareSum, "E[sum p^2]");
        tiltedMean.AssertMatches(moments.TiltedMeanSquare, "E[(sum p z)^2]");
        tiltedSquares.AssertMatches(moments.TiltedSquareSum, "E[sum p^2 z^2]");
        cubes.AssertMatches(moments.CubeSum, "E[sum p^3]");
        quartics.AssertMatches(moments.SquareSumSquared, "E[(sum p^2)^2]");
        fourths.AssertMatches(moments.FourthPowerSum, "E[sum p^4]");
    }

    /// <summary>
    /// One causal attention head (d = 32, head width 32, Q/K/V std sqrt(1/d), so the logits have variance 1) over T = 32
    /// uncorrelated tokens, per query position, against KernelAttention's per-position variance; rows Gaussian
    /// (norm fluctuation 1) or LayerNorm outputs (norm sqrt(d), fluctuation 0). Position 0 has one key and must give
    /// exactly the values' variance (dslm-theory.md 2.7's form says 2.9x that); at every position the formula must be
    /// within 6 % (the per-query spread of the logit variance, O(1/d), is not modelled) plus four standard errors.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CausalAttentionPerPositionMatchesSimulation(bool layerNormed)
    {
        const int d = 32, tokens = 32, trials = 300;
        var normal = new Gaussian(layerNormed ? 21 : 22);
        var estimates = Enumerable.Range(0, tokens).Select(_ => new Estimate()).ToArray();
        var (x, q, k, v) = (new double[tokens][], new double[tokens][], new double[tokens][], new double[tokens][]);
        var (wq, wk, wv) = (new double[d, d], new double[d, d], new double[d, d]);
        var logits = new double[tokens];
        for (int trial = 0; trial < trials; trial++)
        {
            foreach (var weights in new[] { wq, wk, wv })
                for (int a = 0; a < d; a++)
                    for (int b = 0; b < d; b++) weights[a, b] = normal.Next() / Math.Sqrt(d);
            for (int t = 0; t < tokens; t++)
            {
                x[t] = Enumerable.Range(0, d).Select(_ => normal.Next()).ToArray();
                if (layerNormed) Normalize(x[t]);
                (q[t], k[t], v[t]) = (Project(x[t], wq), Project(x[t], wk), Project(x[t], wv));
            }
            for (int t = 0; t < tokens; t++)
            {
                double max = double.NegativeInfinity, total = 0;
                for (int j = 0; j <= t; j++) max = Math.Max(max, logits[j] = Dot(q[t], k[j]) / Math.Sqrt(d));
                for (int j = 0; j <= t; j++) total += logits[j] = Math.Exp(logits[j] - max);
                double squares = 0;
                for (int c = 0; c < d; c++)
                {
                    double output = 0;
                    for (int j = 0; j <= t; j++) output += logits[j] / total * v[j][c];
                    squares += output * output;
                }
                estimates[t].Add(squares / d);
            }
        }
        var head = new KernelAttention(d, AttentionPattern.Uniform(tokens, causal: true), 1.0 / d, 1.0 / d, 1.0 / d, 0, 0)
        {
            InputNormFluctuation = layerNormed ? 0 : 1,
        }.HeadOutput(TokenKernel.Exchangeable(tokens, 1, 0));
        Assert.Equal(1, head[0, 0], 12);
        // Averaged over positions 4..31 the formula is within 2.5 % (measured 1.002 LayerNormed, 0.996 Gaussian); taking
        // LayerNorm outputs for Gaussian rows (fluctuation 1) would leave it 5 % high.
        Assert.InRange(Enumerable.Range(4, tokens - 4).Average(t => estimates[t].Mean / head[t, t]), 0.975, 1.025);
        for (int t = 0; t < tokens; t++)
        {
            double predicted = head[t, t], error = Math.Abs(estimates[t].Mean - predicted);
            Assert.True(error <= 0.06 * predicted + Sigmas * estimates[t].StandardError,
                $"position {t}: simulated {estimates[t].Mean:G4} +- {estimates[t].StandardError:G2}, formula {predicted:G4}");
        }
    }

    /// <summary>
    /// The attention sublayer's backward (<see cref="KernelAttention.Backward"/>) against back-propagation through a
    /// sampled sublayer: 2 heads of width 16, d = 32, T = 24 LayerNorm rows, Q/K/V/output weights N(0, 1/d) (logit
    /// variance 1), an i.i.d. N(0, 1) gradient at the output. The gradient reaches the input through V and through
    /// the logits into Q and K; at these logits the second path carries more than half of it (2.7's "through V only"
    /// would be off by 2x). Per position within 10 % plus four standard errors; averaged over positions within 5 %.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AttentionBackwardMatchesSimulation(bool causal)
    {
        const int d = 32, heads = 2, width = d / heads, tokens = 24, trials = 400;
        var normal = new Gaussian(causal ? 31 : 32);
        var estimates = Enumerable.Range(0, tokens).Select(_ => new Estimate()).ToArray();
        var weights = Enumerable.Range(0, 4).Select(_ => new double[d, d]).ToArray(); // Q, K, V, output
        var x = new double[tokens][];
        for (int trial = 0; trial < trials; trial++)
        {
            foreach (var w in weights)
                for (int a = 0; a < d; a++)
                    for (int b = 0; b < d; b++) w[a, b] = normal.Next() / Math.Sqrt(d);
            for (int t = 0; t < tokens; t++)
            {
                x[t] = Enumerable.Range(0, d).Select(_ => normal.Next()).ToArray();
                Normalize(x[t]);
            }
            var (q, k, v) = (x.Select(row => Project(row, weights[0])).ToArray(), x.Select(row => Project(row, weights[1])).ToArray(),
                x.Select(row => Project(row, weights[2])).ToArray());
            // dL/d(head outputs) = G W_o^T for an i.i.d. output gradient G.
            var gradOut = Enumerable.Range(0, tokens).Select(_ => Enumerable.Range(0, d).Select(_ => normal.Next()).ToArray()).ToArray();
            var gradHeads = gradOut.Select(row => ProjectTransposed(row, weights[3])).ToArray();
            var (dq, dk, dv) = (new double[tokens, d], new double[tokens, d], new double[tokens, d]);
            for (int h = 0; h < heads; h++)
            {
                int offset = h * width;
                for (int t = 0; t < tokens; t++)
                {
                    int keys = causal ? t + 1 : tokens;
                    var p = new double[keys];
                    double max = double.NegativeInfinity, total = 0;
                    for (int j = 0; j < keys; j++)
                    {
                        for (int c = 0; c < width; c++) p[j] += q[t][offset + c] * k[j][offset + c];
                        max = Math.Max(max, p[j] /= Math.Sqrt(width));
                    }
                    for (int j = 0; j < keys; j++) total += p[j] = Math.Exp(p[j] - max);
                    var dp = new double[keys];
                    double expected = 0;
                    for (int j = 0; j < keys; j++)
                    {
                        p[j] /= total;
                        for (int c = 0; c < width; c++)
                        {
                            dp[j] += gradHeads[t][offset + c] * v[j][offset + c];
                            dv[j, offset + c] += p[j] * gradHeads[t][offset + c];
                        }
                        expected += p[j] * dp[j];
                    }
                    for (int j = 0; j < keys; j++)
                    {
                        double ds = p[j] * (dp[j] - expected) / Math.Sqrt(width);
                        for (int c = 0; c < width; c++)
                        {
                            dq[t, offset + c] += ds * k[j][offset + c];
                            dk[j, offset + c] += ds * q[t][offset + c];
                        }
                    }
                }
            }
            for (int t = 0; t < tokens; t++)
            {
                double squares = 0;
                for (int a = 0; a < d; a++)
                {
                    double dx = 0;
                    for (int c = 0; c < d; c++) dx += dq[t, c] * weights[0][a, c] + dk[t, c] * weights[1][a, c] + dv[t, c] * weights[2][a, c];
                    squares += dx * dx;
                }
                estimates[t].Add(squares / d);
            }
        }
        var predicted = new KernelAttention(d, AttentionPattern.Uniform(tokens, causal), 1.0 / d, 1.0 / d, 1.0 / d, 0, 0) { InputNormFluctuation = 0 }
            .Backward(TokenKernel.Exchangeable(tokens, 1, 0), TokenKernel.Exchangeable(tokens, 1, 0));
        for (int t = 0; t < tokens; t++)
            Assert.True(Math.Abs(estimates[t].Mean - predicted[t, t]) <= 0.1 * predicted[t, t] + Sigmas * estimates[t].StandardError,
                $"position {t}: simulated {estimates[t].Mean:G4} +- {estimates[t].StandardError:G2}, formula {predicted[t, t]:G4}");
        Assert.InRange(estimates.Average(e => e.Mean) / predicted.MeanVariance, 0.95, 1.05);
    }

    private static double[] ProjectTransposed(double[] y, double[,] weights)
    {
        var x = new double[weights.GetLength(0)];
        for (int a = 0; a < x.Length; a++)
            for (int b = 0; b < y.Length; b++) x[a] += y[b] * weights[a, b];
        return x;
    }

    private static double[] Project(double[] x, double[,] weights)
    {
        var y = new double[weights.GetLength(1)];
        for (int b = 0; b < y.Length; b++)
            for (int a = 0; a < x.Length; a++) y[b] += x[a] * weights[a, b];
        return y;
    }

    private static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    private static void Normalize(double[] x)
    {
        double mean = x.Average(), std = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / x.Length);
        for (int i = 0; i < x.Length; i++) x[i] = (x[i] - mean) / std;
    }

    private sealed class Gaussian(int seed)
    {
        private readonly Random _random = new(seed);
        private double? _spare;

        public double Next()
        {
            if (_spare is double spare)
            {
                _spare = null;
                return spare;
            }
            double radius = Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble())), angle = 2 * Math.PI * _random.NextDouble();
            _spare = radius * Math.Sin(angle);
            return radius * Math.Cos(angle);
        }
    }

    /// <summary>The mean of independent per-batch estimates and its standard error.</summary>
    private sealed class Estimate
    {
        private readonly List<double> _values = [];

        public double Mean => _values.Average();

        public double StandardError => Math.Sqrt(_values.Sum(v => (v - Mean) * (v - Mean)) / (_values.Count - 1) / _values.Count);

        public void Add(double value) => _values.Add(value);

        public void AssertMatches(double predicted, string what)
        {
            double mean = _values.Average();
            double spread = Math.Sqrt(_values.Sum(v => (v - mean) * (v - mean)) / (_values.Count - 1));
            double standardError = spread / Math.Sqrt(_values.Count);
            Assert.True(Math.Abs(mean - predicted) <= Sigmas * standardError,
                $"{what}: simulated {mean:R} +- {standardError:E2}, formula {predicted:R} ({Math.Abs(mean - predicted) / standardError:F1} standard errors)");
        }
    }
}
