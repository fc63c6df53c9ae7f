namespace DeepScaleLM.Tests.Support;

/// <summary>Assertions on the <see cref="ArgumentException"/> every op throws for bad operands.</summary>
internal static class Rejection
{
    /// <summary>
    /// Asserts <paramref name="call"/> throws an <see cref="ArgumentException"/> (or subclass) whose ParamName is
    /// <paramref name="parameter"/> and whose message contains every fragment (operand names, shapes, values).
    /// </summary>
    public static ArgumentException Expect(Action call, string parameter, params string[] fragments)
    {
        var exception = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(parameter, exception.ParamName);
        foreach (var fragment in fragments) Assert.Contains(fragment, exception.Message);
        return exception;
    }
}
