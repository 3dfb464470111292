namespace Berth.Runtime;

public enum ErrorKind { NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unavailable, Internal }

/// <summary>An expected failure with a one-line message for the user; mapped to an exit code at the edge.</summary>
public sealed class RuntimeException(ErrorKind kind, string message) : Exception(message)
{
    public ErrorKind Kind { get; } = kind;

    public static RuntimeException NotFound(string id) => new(ErrorKind.NotFound, $"container \"{id}\" does not exist");
    public static RuntimeException Invalid(string message) => new(ErrorKind.InvalidArgument, message);
    public static RuntimeException Precondition(string message) => new(ErrorKind.FailedPrecondition, message);
}
