"""`minikafka certs`: a cluster CA and the certificates it signs, for TLS listeners."""

from __future__ import annotations

import argparse
from pathlib import Path

from client.cli.common import Commands, UsageError
from client.tooling.certs import make_cluster_certs


def _names(value: str, what: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise UsageError(f"{what}: '{name}' is not a name (letters, digits, '-', '_', '.')")
    return names


def cmd_certs(args: argparse.Namespace) -> int:
    try:
        brokers = [int(b) for b in _names(args.brokers, "--brokers")] if args.brokers else []
    except ValueError:
        raise UsageError(f"--brokers: '{args.brokers}' is not a list of broker ids") from None
    clients = _names(args.clients, "--clients") if args.clients else []
    if not brokers and not clients:
        raise UsageError("give --brokers, --clients or both")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    issued = make_cluster_certs(out, brokers, clients, hosts=_names(args.hosts, "--hosts") if args.hosts else [])
    print(f"CA: {issued.truststore} (the truststore: ssl.truststore.location)")
    for name, keystore in issued.keystores.items():
        print(f"{name}: {keystore} (ssl.keystore.location), {keystore.with_suffix('.properties')}")
    return 0


def add_commands(commands: Commands) -> None:
    certs = commands.add_parser(
        "certs", help="make a cluster CA and certificates for SSL listeners",
        description="Make a cluster CA (kept if DIR has one) and a PEM keystore and a client.properties "
                    "for each broker and client. A broker's certificate is good for localhost, 127.0.0.1, "
                    "brokerN and --hosts; a client's subject is CN=NAME,OU=clients,O=minikafka, its "
                    "principal User:CN=NAME,OU=clients,O=minikafka.",
    )
    certs.add_argument("--out", required=True, metavar="DIR")
    certs.add_argument("--brokers", metavar="ID[,ID]", help="broker ids, e.g. 1,2,3")
    certs.add_argument("--clients", metavar="NAME[,NAME]", help="client names, e.g. alice,bob")
    certs.add_argument("--hosts", metavar="HOST[,HOST]", help="more names the brokers' certificates are good for")
    certs.set_defaults(func=cmd_certs)
