namespace Berth.Images.Unpack;

/// <summary>A layer that cannot be applied: corrupt or hostile content, a limit exceeded or a digest
/// mismatch (InvalidArgument in the error taxonomy). The message names the member or offset.</summary>
public sealed class LayerException(string message, Exception? inner = null) : Exception(message, inner);
