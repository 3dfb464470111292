namespace Berth.Linux.Netlink;

/// <summary>A netlink request the kernel refused: names the request, the object it acted on
/// (<c>link "br0"</c>), the errno and, when the kernel gave one, its extended-ack message.</summary>
public sealed class NetlinkException : SyscallException
{
    public string? KernelMessage { get; }

    public NetlinkException(string request, string target, int errno, string? kernelMessage)
        : base(request, kernelMessage is null ? target : $"{target} ({kernelMessage})", errno)
        => KernelMessage = kernelMessage;

    public bool IsNotFound => Errno is Linux.Errno.ENOENT or Linux.Errno.ENODEV or Linux.Errno.ESRCH or 99 /*EADDRNOTAVAIL*/;
    public bool IsAlreadyExists => Errno == Linux.Errno.EEXIST;
}
