# Two commands on a fresh machine (see README): `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install; override on a cluster, e.g. make setup TORCH="torch==2.14.1 torchvision==0.29.1"
TORCH ?= torch==2.14.1 torchvision==0.29.1
SNAKEMAKE := $(VENV)/bin/snakemake
DEMO := --configfile config/demo.yaml

.PHONY: setup demo test test-quick dry-run clean-demo

setup: $(VENV)/.installed $(VENV)/.config-errors

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	# pin the torch just installed so no other requirement can pull a different build
	$(PY) -m pip freeze | grep -E '^(torch|torchvision)==' > $(VENV)/torch-pin.txt
	$(PY) -m pip install -q -c $(VENV)/torch-pin.txt -e ".[test]"
	touch $@

# Snakemake's YAML errors in a --configfile name the file and line: a .pth line (lowrank/snakemake_config.py)
$(VENV)/.config-errors: $(VENV)/.installed lowrank/snakemake_config.py
	$(PY) -c 'import sysconfig, lowrank.snakemake_config as s; s.write_pth(sysconfig.get_paths()["purelib"])'
	touch $@

demo: setup
	$(SNAKEMAKE) all --profile profiles/local $(DEMO)
	$(SNAKEMAKE) all --profile profiles/local $(DEMO) --report results/report.html

test: setup
	$(PY) -m pytest -q -rs

test-quick: setup
	$(PY) -m pytest -q -m "not slow and not slurm"

dry-run: setup
	$(SNAKEMAKE) -n all
