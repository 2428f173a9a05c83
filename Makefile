# Two commands on a fresh machine: `make demo` (set up, stylize the bundled example) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv sees the system's packages so an already-installed torch is reused rather than re-downloaded.
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean serve

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	# Pinned on purpose: torch==2.13.0 is a local CPU wheel; an unpinned torch pulls GBs of CUDA packages.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev,export,serve,video]'
	touch $(STAMP)

demo: setup
	mkdir -p out
	$(BIN)/brushwork optimize brushwork/assets/examples/astronaut.jpg starry-night -o out/demo.png
	@echo "wrote out/demo.png"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The web app and HTTP API on http://127.0.0.1:8000/
serve: setup
	$(BIN)/brushwork serve

clean:
	rm -rf $(VENV) out
