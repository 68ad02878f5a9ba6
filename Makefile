# minikafka: `make up` starts a cluster, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTO_DIR := proto/minikafka_rpc
PROTOS := $(wildcard $(PROTO_DIR)/*.proto)
GENERATED := $(PROTOS:.proto=_pb2.py) $(PROTOS:.proto=_pb2_grpc.py)
ZK_JAR := /usr/share/java/zookeeper.jar
BROKERS ?= 3

# The demo cluster in Docker: `docker compose` where there is one, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
PROJECT ?= minikafka
# SECURE=1: the same cluster with mTLS, ACLs and ZooKeeper ACLs (docker-compose.secure.yml).
SECURE ?=
BOTH_FILES := -f docker-compose.yml -f docker-compose.secure.yml
SECURED := Secured: mTLS between everyone, ACLs and ZooKeeper ACLs; certificates in the certs volume (/certs).
DC := $(COMPOSE) -p $(PROJECT) $(if $(SECURE),$(BOTH_FILES))

.PHONY: install proto zookeeper images up down watch local test lint bench chaos chaos-docker clean

install: $(VENV)/.installed zookeeper proto

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Debian's package (it brings the server's jar and a Java runtime); apt's lists are
# refreshed first because a fresh machine has none.
zookeeper:
	@{ test -f $(ZK_JAR) && command -v java >/dev/null; } || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper; }

proto: $(GENERATED)

$(GENERATED) &: $(PROTOS) $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto \
		--grpc_python_out=proto $(PROTOS)

# Images built without a registry (docker/build-images.sh); cached, so a second run takes seconds.
images: install
	PYTHON=$(abspath $(BIN)/python) docker/build-images.sh

up: images
	$(DC) up -d
	@echo
	@echo "minikafka is up: 3 ZooKeeper servers, 3 brokers, a producer and 3 consumers in group demo-group."
	@$(if $(SECURE),echo "$(SECURED)")
	@echo "  make watch     every election, live"
	@echo "  make down      stop it and remove its volumes"
	@echo "A consumer's role, generation and assignment:  $(DC) logs -f consumer1"
	@echo "Kill a broker (the README has a walkthrough):  $(DC) kill broker2"

# Either cluster: the secure file only adds services and volumes, so it is named always.
down:
	$(COMPOSE) -p $(PROJECT) $(BOTH_FILES) --profile tools down --volumes --remove-orphans

watch:
	$(DC) run --rm watch

# The same cluster as processes on this machine, without Docker (a short session timeout so
# that elections are quick to watch; Kafka's default is 18 s).
local: install
	$(BIN)/minikafka local-cluster --brokers $(BROKERS) --override zookeeper.session.timeout.ms=6000

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# Seeded runs of faults against a local cluster, each checked (client/chaos); the table at the end.
CHAOS_RUNS ?= 100
CHAOS_SEED ?= 1
CHAOS_DURATION ?= 20
chaos: install
	$(BIN)/minikafka chaos --runs $(CHAOS_RUNS) --seed $(CHAOS_SEED) --duration $(CHAOS_DURATION) \
		--history chaos-history/local

# The same against the compose cluster of `make up` (started first if it is not running).
CHAOS_DOCKER_RUNS ?= 10
chaos-docker: images
	$(DC) up -d
	$(DC) run --rm chaos --runs $(CHAOS_DOCKER_RUNS) --seed $(CHAOS_SEED) --duration $(CHAOS_DURATION)

bench: install
	$(BIN)/python bench/controller_failover.py
	$(BIN)/python bench/partition_failover.py
	$(BIN)/python bench/produce_throughput.py
	$(BIN)/python bench/consumer_group.py
	$(BIN)/python bench/fuzz.py

clean:
	rm -rf $(VENV) build *.egg-info $(GENERATED) $(PROTOS:.proto=_pb2.pyi)
