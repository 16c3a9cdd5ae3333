# uni-encoder: one-command environment, tests, lint and demo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# DDS stays on loopback with a private domain for everything started from here.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= 73
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp

.PHONY: setup test lint demo clean

setup: $(VENV)/.stamp-msgs

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.stamp-requirements: requirements.txt requirements-ros.txt setup.py | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt -r requirements-ros.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.stamp-msgs: $(VENV)/.stamp-requirements tools/build_msgs.sh $(shell find msgs -type f)
	tools/build_msgs.sh $(VENV)
	touch $@

test: setup
	$(PY) -m pytest test

lint: setup
	$(VENV)/bin/ruff check .

demo: setup
	$(VENV)/bin/uni-encoder demo --out results/demo --overwrite

clean:
	rm -rf $(VENV) build *.egg-info
