// Both engines share the machine's cgroups and process table, and the podman side shares one store:
// one scenario at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
