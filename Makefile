# lifeline: set-up and test entry points. `make help` lists the targets; DEVELOPERS.md explains them.
# Every set-up step is idempotent: it prints one line saying what it installs and why, or that it
# is up to date. Machine caches live in $(LIFELINE_CACHE) and survive `make clean`/`distclean`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Steps run in the order given; the parallel work happens inside the scripts.
.NOTPARALLEL:

VENV := $(CURDIR)/.venv
LIFELINE_CACHE ?= /var/cache/lifeline
SUITES ?= bullseye bookworm trixie
# The Debian tree `make demo` breaks and recovers (tools/demo.sh reads it too).
export DEMO_SUITE ?= bookworm

# Every recipe (and so every podman call a lane makes, molecule's podman driver included) uses the
# project's podman configuration; /etc/containers is never edited.
export CONTAINERS_CONF := $(CURDIR)/tools/setup/containers.conf
export LIFELINE_CACHE
export LIFELINE_TREES ?= $(LIFELINE_CACHE)/trees

# $(call step,NAME,COMMAND): run one step; a failure stops make with a message naming the step.
define step
@$(2) || { echo "make: step '$(1)' FAILED — see the message above; fix it and run 'make $(1)' again" >&2; exit 1; }
endef

.PHONY: help setup apt venv lock ansible-cores collections podman images vm-disks test lint sanity unit oracle playbook molecule cores vm demo clean distclean

help:
	@echo "make setup        apt + venv + ansible-cores + collections + images + vm-disks + podman (each also alone)"
	@echo "make apt          Debian packages of tools/setup/apt-packages.txt that are missing"
	@echo "make venv         .venv with the exact versions of requirements/dev.lock"
	@echo "make lock         re-resolve requirements/dev.txt into requirements/dev.lock (and the ansible-core-X.Y locks)"
	@echo "make ansible-cores  an environment per older ansible-core of the range (requirements/ansible-core-X.Y.lock)"
	@echo "make collections  containers.podman into .venv/collections (offline, from the ansible wheel)"
	@echo "make images       Debian trees + localhost/lifeline/debian:{$(SUITES)} (SUITES=... for fewer), cronie:trixie, rescuer:bookworm"
	@echo "                  and the busy-server roots $(LIFELINE_CACHE)/servers/{$(SUITES)} (tools/images/build-servers.sh)"
	@echo "                  and the execution environment ee:bookworm + rescuer-ssh:bookworm (tools/images/build-ee.sh)"
	@echo "make images-SUITE one suite's tree and image (e.g. images-bookworm)"
	@echo "make vm-disks     the VM lane's bookworm disks (root on LVM, GRUB), laid out by a builder VM"
	@echo "make podman       verify podman with tools/setup/containers.conf (runc, cgroupfs, ulimits, loop)"
	@echo "make test         setup, then every lane (lint+unit+oracle, playbook+molecule+cores, vm), summary table"
	@echo "make lint|unit|oracle|playbook|molecule|cores|vm   one lane (PYTEST_ARGS=..., MOLECULE_SCENARIOS=...)"
	@echo "make cores        the playbook lane's smoke set on each older ansible-core of the range"
	@echo "make sanity       ansible-test sanity on the built collection, offline (SANITY_ARGS=\"--test pylint\")"
	@echo "make oracle       the real cron of each suite's image against the cron grammar (podman)"
	@echo "make demo         a real Debian root broken like incident 1, recovered by restore-glibc.yml"
	@echo "                  (sets up apt, venv and the $(DEMO_SUITE) tree only; DEMO_SUITE=... for another)"
	@echo "make clean        remove .cache and build outputs;  make distclean: also .venv"

# ---- set-up --------------------------------------------------------------------------------
setup: apt venv ansible-cores collections images vm-disks podman
	@echo "setup: done (machine caches in $(LIFELINE_CACHE), tools in .venv)"

apt:
	$(call step,apt,tools/setup/apt.sh)

venv:
	$(call step,venv,tools/setup/venv.sh)

lock:
	$(call step,lock,tools/setup/venv.sh --lock)
	$(call step,lock,tools/setup/ansible-cores.sh --lock)

ansible-cores:
	$(call step,ansible-cores,tools/setup/ansible-cores.sh)

collections: venv
	$(call step,collections,$(VENV)/bin/python tools/setup/ansible-collections.py)

images: apt venv
	$(call step,images,tools/images/build-images.sh $(SUITES))
	$(call step,images,tools/images/build-servers.sh $(SUITES))
	$(call step,images,tools/images/build-ee.sh)

# One suite's tree and image (images-bookworm, ...): the same step for that suite alone.
images-%: apt
	$(call step,images-$*,tools/images/build-images.sh $*)

vm-disks: apt
	$(call step,vm-disks,tools/images/build-vm-disks.sh)

podman: apt
	$(call step,podman,tools/setup/check-podman.sh)

# ---- test lanes ----------------------------------------------------------------------------
test: setup
	@tools/lanes/run-lanes.sh test

lint: apt venv collections
	@tools/lanes/run-lanes.sh lint

# Also a check of the lint lane; here with the Debian trees, whose Pythons compile/import use.
sanity: apt venv images
	@tools/lanes/sanity.sh $(SANITY_ARGS)

unit: venv
	@tools/lanes/run-lanes.sh unit

oracle: venv images
	@tools/lanes/run-lanes.sh oracle

playbook: venv collections images
	@tools/lanes/run-lanes.sh playbook

# The smoke set on each older ansible-core; beside the playbook lane in `make test`.
cores: venv collections images ansible-cores
	@tools/lanes/run-lanes.sh cores

# Containers of the three suites (podman driver, containers.podman) with the trees bound in; no VM.
molecule: apt venv collections images podman
	@tools/lanes/run-lanes.sh molecule

vm: venv collections images vm-disks
	@tools/lanes/run-lanes.sh vm

# The venv's ansible-playbook repairs a copy of one Debian tree: no containers.podman, no other
# suite, no podman check, no VM disk.
demo: apt venv images-$(DEMO_SUITE)
	@tools/demo.sh

# ---- cleaning ------------------------------------------------------------------------------
clean:
	rm -rf .cache .pytest_cache .ruff_cache .ansible tests/output lifeline-rescue-*.tar.gz
	find . -path ./.venv -prune -o -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
