# kybernetes: the two commands are `make up` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
DATA    ?= $(CURDIR)/.kyb
# real containers with runc as root; supervised host processes (no isolation) otherwise
RUNTIME ?= $(shell [ "$$(id -u)" = 0 ] && echo runc || echo process)
APT_PKGS := etcd-server runc containernetworking-plugins iptables busybox-static \
            docker-registry openssh-server curl
STAMP   := $(VENV)/.installed

.PHONY: install up test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo ">> apt-get install$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

up: install
	$(VENV)/bin/kyb up --data-dir $(DATA) --runtime $(RUNTIME)

test: install
	$(VENV)/bin/ruff check src tests bench tools
	$(PY) -m pytest -n 2 --dist loadgroup -q tests

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(DATA)
