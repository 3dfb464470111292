using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// `berth server` (<see cref="ServerHost"/>: API server, controllers, scheduler) run in this test process
/// on a free port with a temporary data directory, and the real kubectl pointed at its kubeconfig. Same
/// code as out/berth, without needing a fresh NativeAOT build for every change.
/// </summary>
public class InProcessBerthServer : BerthServer
{
    readonly CancellationTokenSource stop = new();
    Task? running;

    public override async Task InitializeAsync()
    {
        var options = new ServerOptions { DataDir = DataDir, Listen = $"127.0.0.1:{Port}", DatastoreEndpoint = DatastoreEndpoint };
        running = Task.Run(() => ServerHost.RunAsync(options, TextWriter.Null, stop.Token));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (running.IsCompleted) await running; // throws what stopped it
            try
            {
                using var c = new System.Net.Sockets.TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, Port);
                if (File.Exists(Kubeconfig)) return;
            }
            catch (System.Net.Sockets.SocketException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException("the in-process server did not listen within 30 s");
    }

    public override async Task DisposeAsync()
    {
        stop.Cancel();
        if (running is not null) { try { await running.WaitAsync(TimeSpan.FromSeconds(15)); } catch (OperationCanceledException) { } }
        stop.Dispose();
        await base.DisposeAsync();
    }
}

/// <summary><see cref="InProcessBerthServer"/> on a real etcd started for it.</summary>
public sealed class InProcessEtcdBerthServer : InProcessBerthServer
{
    readonly Storage.EtcdServer etcd = new();

    public override async Task InitializeAsync()
    {
        await etcd.InitializeAsync();
        DatastoreEndpoint = etcd.Endpoint;
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        try { await base.DisposeAsync(); }
        finally { await etcd.DisposeAsync(); }
    }
}

/// <summary>RBAC with kubectl against the server on SQLite (the default store).</summary>
public sealed class RbacTests(InProcessBerthServer s) : RbacContract(s), IClassFixture<InProcessBerthServer>;

/// <summary>The same with the server's state in etcd (the RBAC watch and catch-up over etcd's revisions).</summary>
public sealed class EtcdRbacTests(InProcessEtcdBerthServer s) : RbacContract(s), IClassFixture<InProcessEtcdBerthServer>;

/// <summary>Kubernetes RBAC as the real kubectl (1.32) sees it: users from client certificates and ServiceAccount tokens, roles, bindings, reviews.</summary>
public abstract class RbacContract(InProcessBerthServer s)
{
    static void Ok(BerthServer.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    /// <summary>A kubeconfig for a client certificate the server's CA signs: CN=<paramref name="user"/>, O=each group.</summary>
    string CertKubeconfig(string user, params string[] groups)
    {
        using var ca = X509Certificate2.CreateFromPemFile(Path.Combine(s.DataDir, "ca.crt"), Path.Combine(s.DataDir, "ca.key"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = "CN=" + user + string.Concat(groups.Select(g => ", O=" + g));
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var cert = req.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1), RandomNumberGenerator.GetBytes(16));
        return WriteKubeconfig(user, $"""
                client-certificate-data: {B64(cert.ExportCertificatePem())}
                client-key-data: {B64(key.ExportPkcs8PrivateKeyPem())}
            """);
    }

    string TokenKubeconfig(string name, string token) => WriteKubeconfig(name, $"    token: {token}\n");

    static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    string WriteKubeconfig(string name, string userBlock)
    {
        var path = Path.Combine(s.DataDir, $"{name.Replace(':', '_')}.kubeconfig");
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: berth
              cluster:
                server: https://127.0.0.1:{s.Port}
                certificate-authority-data: {B64(File.ReadAllText(Path.Combine(s.DataDir, "ca.crt")))}
            users:
            - name: u
              user:
            {userBlock}
            contexts:
            - name: c
              context: {"{"}cluster: berth, user: u, namespace: default{"}"}
            current-context: c

            """);
        return path;
    }

    Task<BerthServer.Result> As(string kubeconfig, string args, string? stdin = null) =>
        s.Kubectl(args, stdin, new Dictionary<string, string> { ["KUBECONFIG"] = kubeconfig });

    /// <summary>Retries (the aggregation controller fills admin/edit/view shortly after start) until the command succeeds.</summary>
    static async Task<BerthServer.Result> Eventually(Func<Task<BerthServer.Result>> run, Func<BerthServer.Result, bool>? done = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var r = await run();
            if ((done ?? (x => x.ExitCode == 0))(r) || DateTime.UtcNow > deadline) return r;
            await Task.Delay(250);
        }
    }

    async Task Namespace(string ns)
    {
        if ((await s.Kubectl($"get ns {ns}")).ExitCode != 0) Ok(await s.Kubectl($"create namespace {ns}"));
    }

    [Fact]
    public async Task A_certificate_user_is_forbidden_until_a_RoleBinding_grants_view()
    {
        await Namespace("rb1");
        var alice = CertKubeconfig("alice", "dev-team");
        var denied = await As(alice, "-n rb1 get pods");
        Assert.NotEqual(0, denied.ExitCode);
        Assert.Contains("Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"rb1\"", denied.Stderr);
        var named = await As(alice, "-n rb1 get deployment web");
        Assert.Contains("deployments.apps \"web\" is forbidden: User \"alice\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"rb1\"", named.Stderr);
        var nodes = await As(alice, "get nodes");
        Assert.Contains("nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope", nodes.Stderr);

        // the Status itself, as kube-apiserver writes it
        var raw = await As(alice, "get --raw /api/v1/namespaces/rb1/pods");
        Assert.Contains("(Forbidden)", raw.Stderr);

        Ok(await s.Kubectl("-n rb1 create rolebinding alice-view --clusterrole=view --user=alice"));
        var allowed = await Eventually(() => As(alice, "-n rb1 get pods"));
        Ok(allowed);
        Assert.Contains("No resources found in rb1 namespace.", allowed.Stderr);
        // view does not write, and the binding is for rb1 only
        var write = await As(alice, "-n rb1 create configmap c1 --from-literal=a=b");
        Assert.Contains("configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"rb1\"", write.Stderr);
        Assert.Contains("forbidden", (await As(alice, "-n default get pods")).Stderr);

        // a group binding works through the certificate's O
        Ok(await s.Kubectl("-n rb1 create rolebinding team-edit --clusterrole=edit --group=dev-team"));
        Ok(await Eventually(() => As(alice, "-n rb1 create configmap c1 --from-literal=a=b")));

        // the binding gone, the access is gone
        Ok(await s.Kubectl("-n rb1 delete rolebinding alice-view team-edit"));
        Assert.Contains("forbidden", (await As(alice, "-n rb1 get pods")).Stderr);
    }

    [Fact]
    public async Task Non_resource_urls_and_discovery_follow_the_default_bindings()
    {
        var bob = CertKubeconfig("bob");
        var health = await As(bob, "get --raw /healthz");
        Ok(health);
        Assert.Equal("ok", health.Stdout.Trim());
        Ok(await As(bob, "get --raw /version"));
        Ok(await As(bob, "api-resources"));
        var metrics = await As(bob, "get --raw /metrics");
        Assert.Contains("forbidden: User \\\"bob\\\" cannot get path \\\"/metrics\\\"", metrics.Stderr.Replace("\"", "\\\""));
        Assert.Contains("(Forbidden)", metrics.Stderr);
        var whoami = await As(bob, "auth whoami");
        Ok(whoami);
        Assert.Contains("bob", whoami.Stdout);
        Assert.Contains("system:authenticated", whoami.Stdout);
    }

    [Fact]
    public async Task Can_i_answers_for_oneself_with_list_and_for_others_with_as()
    {
        await Namespace("rb2");
        var carol = CertKubeconfig("carol");
        var no = await As(carol, "-n rb2 auth can-i list pods");
        Assert.Equal(1, no.ExitCode);
        Assert.Equal("no", no.Stdout.Trim());
        Assert.Equal("no", (await s.Kubectl("-n rb2 auth can-i list pods --as=carol")).Stdout.Trim());
        Assert.Equal("yes", (await s.Kubectl("-n rb2 auth can-i list pods")).Stdout.Trim()); // the admin (system:masters)

        Ok(await s.Kubectl("-n rb2 create role pod-logs --verb=get,list --resource=pods,pods/log --resource-name=web"));
        Ok(await s.Kubectl("-n rb2 create role lister --verb=list --resource=pods"));
        Ok(await s.Kubectl("-n rb2 create rolebinding carol-logs --role=pod-logs --user=carol"));
        Ok(await s.Kubectl("-n rb2 create rolebinding carol-list --role=lister --user=carol"));
        Assert.Equal("yes", (await s.Kubectl("-n rb2 auth can-i list pods --as=carol")).Stdout.Trim());
        Assert.Equal("yes", (await As(carol, "-n rb2 auth can-i get pods/web --subresource=log")).Stdout.Trim());
        Assert.Equal("no", (await As(carol, "-n rb2 auth can-i get pods/other --subresource=log")).Stdout.Trim());
        Assert.Equal("no", (await As(carol, "-n rb2 auth can-i delete pods")).Stdout.Trim());
        Assert.Equal("no", (await As(carol, "-n default auth can-i list pods")).Stdout.Trim());

        var list = await As(carol, "-n rb2 auth can-i --list");
        Ok(list);
        Assert.Matches(@"(?m)^pods\s+\[\]\s+\[\]\s+\[list\]", list.Stdout);
        Assert.Matches(@"(?m)^pods/log\s+\[\]\s+\[web\]\s+\[get list\]", list.Stdout);
        Assert.Matches(@"(?m)^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]", list.Stdout);
        Assert.Matches(@"(?m)^\s+\[/healthz\]\s+\[\]\s+\[get\]", list.Stdout);

        // --as needs the impersonate verb: carol has none
        var imp = await As(carol, "-n rb2 get pods --as=dave");
        Assert.Contains("users \"dave\" is forbidden: User \"carol\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope", imp.Stderr);
        Ok(await s.Kubectl("create clusterrole impersonator --verb=impersonate --resource=users --resource-name=dave"));
        Ok(await s.Kubectl("create clusterrolebinding carol-impersonates --clusterrole=impersonator --user=carol"));
        var asDave = await As(carol, "-n rb2 get pods --as=dave");
        Assert.Contains("pods is forbidden: User \"dave\" cannot list resource \"pods\"", asDave.Stderr);
        Assert.Contains("groups \"admins\" is forbidden", (await As(carol, "-n rb2 get pods --as=dave --as-group=admins")).Stderr);
    }

    [Fact]
    public async Task Escalation_is_refused_unless_the_user_holds_the_permissions_or_may_bind()
    {
        await Namespace("rb3");
        var erin = CertKubeconfig("erin");
        Ok(await s.Kubectl("-n rb3 create role rbac-writer --verb=create,get,list,update,patch,delete --resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io"));
        Ok(await s.Kubectl("-n rb3 create role pod-reader --verb=get,list,watch --resource=pods"));
        Ok(await s.Kubectl("-n rb3 create rolebinding erin-rbac --role=rbac-writer --user=erin"));
        Ok(await s.Kubectl("-n rb3 create rolebinding erin-pods --role=pod-reader --user=erin"));

        // a role within what erin holds: allowed; beyond it: refused with kube's message
        Ok(await As(erin, "-n rb3 create role sub-reader --verb=get --resource=pods"));
        var esc = await As(erin, "-n rb3 create role deleter --verb=get,delete --resource=pods");
        Assert.NotEqual(0, esc.ExitCode);
        Assert.Contains("roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"erin\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:", esc.Stderr);
        Assert.Contains("{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}", esc.Stderr);

        // bindings: to a role she holds, fine; to cluster-admin, refused
        Ok(await As(erin, "-n rb3 create rolebinding frank-reads --role=pod-reader --user=frank"));
        var admin = await As(erin, "-n rb3 create rolebinding frank-admin --clusterrole=cluster-admin --user=frank");
        Assert.Contains("rolebindings.rbac.authorization.k8s.io \"frank-admin\" is forbidden: user \"erin\"", admin.Stderr);
        Assert.Contains("is attempting to grant RBAC permissions not currently held", admin.Stderr);

        // with `bind` on that ClusterRole the binding is allowed
        Ok(await s.Kubectl("create clusterrole bind-edit --verb=bind --resource=clusterroles --resource-name=edit"));
        Ok(await s.Kubectl("-n rb3 create rolebinding erin-bind-edit --clusterrole=bind-edit --user=erin"));
        Ok(await As(erin, "-n rb3 create rolebinding frank-edit --clusterrole=edit --user=frank"));
        Assert.Equal("yes", (await s.Kubectl("-n rb3 auth can-i create deployments --as=frank")).Stdout.Trim());
    }

    [Fact]
    public async Task Service_account_tokens_from_kubectl_create_token_authenticate_as_the_service_account()
    {
        await Namespace("rb4");
        Ok(await s.Kubectl("-n rb4 create serviceaccount robot"));
        var created = await s.Kubectl("-n rb4 create token robot --duration=20m");
        Ok(created);
        var token = created.Stdout.Trim();
        Assert.Equal(3, token.Split('.').Length);
        var robot = TokenKubeconfig("robot", token);
        var denied = await As(robot, "-n rb4 get pods");
        Assert.Contains("pods is forbidden: User \"system:serviceaccount:rb4:robot\" cannot list resource \"pods\" in API group \"\" in the namespace \"rb4\"", denied.Stderr);
        Ok(await s.Kubectl("-n rb4 create rolebinding robot-view --clusterrole=view --serviceaccount=rb4:robot"));
        Ok(await Eventually(() => As(robot, "-n rb4 get pods")));
        var who = await As(robot, "auth whoami");
        Assert.Contains("system:serviceaccount:rb4:robot", who.Stdout);
        Assert.Contains("system:serviceaccounts:rb4", who.Stdout);

        // a token is no longer accepted once its ServiceAccount is gone, nor when tampered with
        var tampered = TokenKubeconfig("tampered", token[..^4] + (token[^4..] == "AAAA" ? "BBBB" : "AAAA"));
        Assert.Contains("Unauthorized", (await As(tampered, "-n rb4 get pods")).Stderr);
        Assert.Contains("may not specify a duration less than 10 minutes", (await s.Kubectl("-n rb4 create token robot --duration=1m")).Stderr);
        Assert.Contains("serviceaccounts \"ghost\" not found", (await s.Kubectl("-n rb4 create token ghost")).Stderr);
        Ok(await s.Kubectl("-n rb4 delete serviceaccount robot"));
        await Task.Delay(11_000); // the authenticator re-checks the ServiceAccount at least every 10 s
        Assert.Contains("Unauthorized", (await As(robot, "-n rb4 get pods")).Stderr);
    }

    [Fact]
    public async Task Every_namespace_gets_kube_root_ca_crt_and_it_comes_back()
    {
        await Namespace("rb5");
        var ca = File.ReadAllText(Path.Combine(s.DataDir, "ca.crt")).Trim();
        var get = await Eventually(() => s.Kubectl("-n rb5 get configmap kube-root-ca.crt -o json"));
        Ok(get);
        Assert.Equal(ca, JsonNode.Parse(get.Stdout)!["data"]!["ca.crt"]!.GetValue<string>().Trim());
        Ok(await s.Kubectl("-n rb5 delete configmap kube-root-ca.crt"));
        Ok(await Eventually(() => s.Kubectl("-n rb5 get configmap kube-root-ca.crt")));
        Ok(await s.Kubectl("-n rb5 patch configmap kube-root-ca.crt --type=merge -p '{\"data\":{\"ca.crt\":\"changed\"}}'"));
        var back = await Eventually(() => s.Kubectl("-n rb5 get configmap kube-root-ca.crt -o jsonpath={.data.ca\\.crt}"), r => r.Stdout.Trim() == ca);
        Assert.Equal(ca, back.Stdout.Trim());
    }

    [Fact]
    public async Task Rbac_kinds_are_served_listed_and_explained()
    {
        var roles = await Eventually(() => s.Kubectl("get clusterroles"), r => r.Stdout.Contains("system:aggregate-to-view"));
        Ok(roles);
        Assert.Matches(@"^NAME\s+CREATED AT", roles.Stdout);
        Assert.Matches(@"(?m)^cluster-admin\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", roles.Stdout);
        var crb = await s.Kubectl("get clusterrolebindings -o wide");
        Ok(crb);
        Assert.Matches(@"^NAME\s+ROLE\s+AGE\s+USERS\s+GROUPS\s+SERVICEACCOUNTS", crb.Stdout);
        Assert.Matches(@"(?m)^cluster-admin\s+ClusterRole/cluster-admin\s+\S+\s+system:masters", crb.Stdout);
        // view aggregates system:aggregate-to-view's rules (the aggregation controller)
        var view = await Eventually(() => s.Kubectl("get clusterrole view -o json"), r => r.Stdout.Contains("pods/log"));
        Assert.Contains("\"pods/log\"", view.Stdout);
        var edit = await Eventually(() => s.Kubectl("get clusterrole edit -o json"), r => r.Stdout.Contains("pods/exec"));
        Assert.Contains("\"pods/exec\"", edit.Stdout);
        var explain = await s.Kubectl("explain role.rules");
        Ok(explain);
        Assert.Contains("verbs", explain.Stdout);
        var api = await s.Kubectl("api-resources --api-group=rbac.authorization.k8s.io");
        Ok(api);
        Assert.Matches(@"(?m)^clusterrolebindings\s+rbac\.authorization\.k8s\.io/v1\s+false\s+ClusterRoleBinding$", api.Stdout);
        Assert.Matches(@"(?m)^roles\s+rbac\.authorization\.k8s\.io/v1\s+true\s+Role$", api.Stdout);
        // bad input: a binding to a kind that is not a role, a rule without verbs
        var bad = await s.Kubectl("apply -f -", """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: bad}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: x}
            subjects: [{kind: User, name: u, apiGroup: rbac.authorization.k8s.io}]
            """);
        Assert.Contains("roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"", bad.Stderr);
        var noVerbs = await s.Kubectl("apply -f -", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: noverbs}\nrules: [{apiGroups: [\"\"], resources: [pods]}]\n");
        Assert.Contains("rules[0].verbs: Required value", noVerbs.Stderr);
    }
}
