namespace Berth.Engine;

/// <summary>The engine's error taxonomy (DESIGN: errors); mapped to exit codes only at the CLI.</summary>
public enum ErrorKind { NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unavailable, Internal }

public sealed class EngineException(ErrorKind kind, string message, int exitCode = 125) : Exception(message)
{
    public ErrorKind Kind { get; } = kind;
    /// <summary>Docker's convention: 125 for an error of the engine itself, 126 when the command
    /// cannot be invoked, 127 when it is not found.</summary>
    public int ExitCode { get; } = exitCode;

    public static EngineException NoSuchContainer(string nameOrId) => new(ErrorKind.NotFound, $"no such container: {nameOrId}");
    public static EngineException Invalid(string message) => new(ErrorKind.InvalidArgument, message);
}
