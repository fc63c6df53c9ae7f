using BenchmarkDotNet.Running;

// Every suite in this assembly; pick with --filter, e.g. `dotnet run -c Release --project bench -- --filter '*Gemm*'`.
BenchmarkSwitcher.FromAssembly(typeof(DeepScaleLM.Bench.OpsBenchmarks).Assembly).Run(args);
