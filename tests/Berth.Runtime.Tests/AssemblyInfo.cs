// Containers are real processes on a 2-core machine: the escape tests hammer `exec` while
// attackers spin, and OOM/pids tests need the CPU to reach their limits promptly. Running the
// classes one after another keeps every test's timing assumptions true (no timeout races).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
