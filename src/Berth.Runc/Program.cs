// berth-runc: the OCI runtime's own executable (runc's command line).
return Berth.Runtime.Cli.RuncCli.Run(args);
