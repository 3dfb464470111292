using System.Diagnostics;

namespace Berth.Engine.Networking;

/// <summary>Runs the iptables binary (iptables-nft on Debian 12), as Docker does. Every call waits for the
/// xtables lock (-w); each change is idempotent (-C before -A/-I, -D while -C matches).</summary>
public sealed class Iptables(string binary = "iptables")
{
    public (int Code, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-w");
        psi.ArgumentList.Add("5");
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        { throw new NetworkException(NetworkErrorKind.Unavailable, $"cannot run {binary}: {e.Message} (install the iptables package)", e); }
        using (p)
        {
            var err = p.StandardError.ReadToEndAsync();
            var o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, o, err.Result.Trim());
        }
    }

    void Must(string[] args)
    {
        var (code, _, err) = Run(args);
        if (code != 0) throw new NetworkException(NetworkErrorKind.Internal, $"iptables {string.Join(' ', args)}: {err} (exit {code})");
    }

    /// <summary>Applies a batch with iptables-restore --noflush: one process and one atomic commit per
    /// table (all or nothing). Returns false, changing nothing, if any line fails.</summary>
    public bool TryRestore(IEnumerable<(string Table, string Line)> lines)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var g in lines.GroupBy(l => l.Table))
        {
            sb.Append('*').Append(g.Key).Append('\n');
            foreach (var (_, line) in g) sb.Append(line).Append('\n');
            sb.Append("COMMIT\n");
        }
        if (sb.Length == 0) return true;
        var psi = new ProcessStartInfo(binary + "-restore") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-w", "5", "--noflush" }) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardInput.Write(sb.ToString());
            p.StandardInput.Close();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            _ = err.Result;
            return p.ExitCode == 0;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException) { return false; }
    }

    /// <summary>A rule as an iptables-restore line (arguments quoted where they need it).</summary>
    public static string Line(string op, string chain, string[] rule) =>
        $"{op} {chain} " + string.Join(' ', rule.Select(a => a.Any(c => c is ' ' or '"' or '\'') ? "\"" + a.Replace("\"", "\\\"") + "\"" : a));

    public bool ChainExists(string table, string chain) => Run("-t", table, "-S", chain).Code == 0;

    public void EnsureChain(string table, string chain)
    {
        if (ChainExists(table, chain)) return;
        var (code, _, err) = Run("-t", table, "-N", chain);
        if (code != 0 && !ChainExists(table, chain)) throw new NetworkException(NetworkErrorKind.Internal, $"iptables -t {table} -N {chain}: {err}");
    }

    public bool RuleExists(string table, string chain, string[] rule) => Run(["-t", table, "-C", chain, .. rule]).Code == 0;

    public void EnsureRule(string table, string chain, string[] rule, bool insert = false)
    {
        if (RuleExists(table, chain, rule)) return;
        Must(insert ? ["-t", table, "-I", chain, "1", .. rule] : ["-t", table, "-A", chain, .. rule]);
    }

    public void DeleteRule(string table, string chain, string[] rule)
    {
        for (var i = 0; i < 16 && RuleExists(table, chain, rule); i++) Must(["-t", table, "-D", chain, .. rule]);
    }

    /// <summary>Rules in a chain (the -A lines of iptables -S); 0 when it does not exist.</summary>
    public int RuleCount(string table, string chain)
    {
        var (code, o, _) = Run("-t", table, "-S", chain);
        return code != 0 ? 0 : o.Split('\n').Count(l => l.StartsWith("-A ", StringComparison.Ordinal));
    }

    public void DeleteChain(string table, string chain)
    {
        if (!ChainExists(table, chain)) return;
        Must(["-t", table, "-F", chain]);
        Must(["-t", table, "-X", chain]);
    }
}

/// <summary>Berth's netfilter rules, all in its own chains: nat <c>P</c> (DNAT of published ports, jumped to
/// from PREROUTING and OUTPUT for local destinations, so 127.0.0.1 and every host address work), nat
/// <c>P-POSTROUTING</c> (MASQUERADE of outbound and host-originated traffic) and filter <c>P</c> (FORWARD
/// accepts, for hosts whose FORWARD policy is DROP). P is "BERTH" unless a test picks its own. The chains
/// and jumps exist while a network needs them and are removed with the last one.</summary>
public sealed class Firewall(string prefix = "BERTH", Iptables? iptables = null)
{
    readonly Iptables _ipt = iptables ?? new Iptables();
    public string Prefix { get; } = prefix;
    string Nat => Prefix;
    string Post => Prefix + "-POSTROUTING";
    string Filter => Prefix;
    string LockPath => $"/run/lock/berth-netfilter-{Prefix}.lock";

    string[] JumpPre => ["-m", "addrtype", "--dst-type", "LOCAL", "-j", Nat];
    string[] JumpPost => ["-j", Post];
    string[] JumpForward => ["-j", Filter];

    FileLock Lock()
    {
        Directory.CreateDirectory("/run/lock");
        return FileLock.Acquire(LockPath);
    }

    void EnsureBase()
    {
        _ipt.EnsureChain("nat", Nat);
        _ipt.EnsureChain("nat", Post);
        _ipt.EnsureChain("filter", Filter);
        _ipt.EnsureRule("nat", "PREROUTING", JumpPre);
        _ipt.EnsureRule("nat", "OUTPUT", JumpPre);
        _ipt.EnsureRule("nat", "POSTROUTING", JumpPost);
        _ipt.EnsureRule("filter", "FORWARD", JumpForward, insert: true);
    }

    /// <summary>Removes the chains and jumps when no rule is left in them (caller holds the lock).</summary>
    void RemoveBaseIfEmpty()
    {
        if (_ipt.RuleCount("nat", Nat) + _ipt.RuleCount("nat", Post) + _ipt.RuleCount("filter", Filter) > 0) return;
        _ipt.DeleteRule("nat", "PREROUTING", JumpPre);
        _ipt.DeleteRule("nat", "OUTPUT", JumpPre);
        _ipt.DeleteRule("nat", "POSTROUTING", JumpPost);
        _ipt.DeleteRule("filter", "FORWARD", JumpForward);
        _ipt.DeleteChain("nat", Nat);
        _ipt.DeleteChain("nat", Post);
        _ipt.DeleteChain("filter", Filter);
    }

    static IEnumerable<(string Table, bool Post, string[] Rule)> NetworkRules(string bridge, string subnet, bool isInternal)
    {
        if (!isInternal) yield return ("nat", true, ["-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"]);
        // Host-originated traffic to containers (127.0.0.1 after DNAT, route_localnet) leaves with the gateway's address.
        yield return ("nat", true, ["-o", bridge, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE"]);
        yield return ("filter", false, isInternal ? ["-i", bridge, "-o", bridge, "-j", "ACCEPT"] : ["-i", bridge, "-j", "ACCEPT"]);
        yield return ("filter", false, ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]);
    }

    static IEnumerable<(string Table, int Chain, string[] Rule)> PortRules(string bridge, string containerIp, PortMapping p)
    {
        var port = p.ContainerPort.ToString();
        var dnat = new List<string> { "-p", p.Protocol };
        if (p.HostIp is not ("" or "0.0.0.0")) dnat.AddRange(["-d", p.HostIp]);
        dnat.AddRange(["--dport", p.HostPort.ToString(), "-j", "DNAT", "--to-destination", $"{containerIp}:{port}"]);
        yield return ("nat", 0, dnat.ToArray());
        yield return ("nat", 1, ["-s", containerIp, "-d", containerIp, "-p", p.Protocol, "--dport", port, "-j", "MASQUERADE"]);
        yield return ("filter", 2, ["-d", containerIp, "!", "-i", bridge, "-o", bridge, "-p", p.Protocol, "--dport", port, "-j", "ACCEPT"]);
    }

    string ChainOf(string table, bool post) => table == "filter" ? Filter : post ? Post : Nat;
    string ChainOf(int c) => c switch { 0 => Nat, 1 => Post, _ => Filter };
    static string TableOf(int c) => c == 2 ? "filter" : "nat";

    public void AddNetwork(string bridge, string subnet, bool isInternal)
    {
        using var l = Lock();
        EnsureBase();
        foreach (var (t, post, rule) in NetworkRules(bridge, subnet, isInternal)) _ipt.EnsureRule(t, ChainOf(t, post), rule);
    }

    public void RemoveNetwork(string bridge, string subnet, bool isInternal)
    {
        using var l = Lock();
        foreach (var (t, post, rule) in NetworkRules(bridge, subnet, isInternal)) _ipt.DeleteRule(t, ChainOf(t, post), rule);
        RemoveBaseIfEmpty();
    }

    /// <summary>Adds the rules of published ports. Fast path: one iptables-restore batch (the network's
    /// rules keep the chains alive, so they exist); if it fails, the idempotent rule-by-rule path.</summary>
    public void AddPorts(string bridge, string containerIp, IEnumerable<PortMapping> ports)
    {
        var rules = ports.SelectMany(p => PortRules(bridge, containerIp, p)).ToList();
        if (rules.Count == 0) return;
        using var l = Lock();
        if (_ipt.TryRestore(rules.Select(r => (TableOf(r.Chain), Iptables.Line("-A", ChainOf(r.Chain), r.Rule))))) return;
        EnsureBase();
        foreach (var (_, c, rule) in rules) _ipt.EnsureRule(TableOf(c), ChainOf(c), rule);
    }

    /// <summary>Removes the rules of published ports: one batch of deletes, or (if some rule is already gone)
    /// rule by rule. The chains stay: the network's own rules are still in them.</summary>
    public void RemovePorts(string bridge, string containerIp, IEnumerable<PortMapping> ports)
    {
        var rules = ports.SelectMany(p => PortRules(bridge, containerIp, p)).ToList();
        if (rules.Count == 0) return;
        using var l = Lock();
        if (_ipt.TryRestore(rules.Select(r => (TableOf(r.Chain), Iptables.Line("-D", ChainOf(r.Chain), r.Rule))))) return;
        foreach (var (_, c, rule) in rules) _ipt.DeleteRule(TableOf(c), ChainOf(c), rule);
        RemoveBaseIfEmpty();
    }
}
