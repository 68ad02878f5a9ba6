#!/bin/sh
# One server of a ZooKeeper ensemble, configured from the environment:
#   ZOO_MY_ID    this server's id (1-255)
#   ZOO_SERVERS  the ensemble, "host:2888:3888" for server 1, 2, ... separated by spaces
#                (empty: a standalone server)
set -eu
data=/var/lib/zookeeper/data
mkdir -p "$data"
echo "${ZOO_MY_ID:-1}" > "$data/myid"
config=/tmp/zoo.cfg
{
    echo "tickTime=${ZOO_TICK_TIME:-2000}"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$data"
    echo "clientPort=2181"
    # Short broker sessions (the demo's 6 s) are within 2 to 20 ticks.
    echo "maxSessionTimeout=60000"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=ruok,srvr,mntr,stat"
    # Bind the quorum ports on every interface: a container's own name may resolve to another.
    echo "quorumListenOnAllIPs=true"
    i=1
    for server in ${ZOO_SERVERS:-}; do
        echo "server.$i=$server"
        i=$((i + 1))
    done
} > "$config"
exec java -Xmx256m -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$config"
