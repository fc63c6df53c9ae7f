namespace DeepScaleLM.Training.Optimization;

/// <summary>Argument checks shared by the schedules.</summary>
internal static class ScheduleCheck
{
    public static void Rate(double rate, string name)
    {
        if (!double.IsFinite(rate) || rate < 0)
            throw new ArgumentOutOfRangeException(name, rate, $"{name} must be finite and >= 0");
    }
}
