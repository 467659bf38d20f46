# The README's two commands: `make demo` and `make test`. Both set everything up first,
# idempotently: Debian packages (when this user may install them), a virtual environment with
# livesub, its Python dependencies and its model packages.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# libportaudio2: sounddevice (microphone input); apertium + pairs: rule-based translation;
# chromium: the browser the HUD page's tests drive (tests/test_hud.py, through Playwright; the
# distribution's browser, as Playwright's own downloads are not an option everywhere);
# python3-venv when this Python cannot make a virtual environment (Debian's own, without it).
VENV_PACKAGE := $(shell $(PYTHON) -c "import ensurepip" 2>/dev/null || echo python3-venv)
DEB_PACKAGES ?= libportaudio2 apertium apertium-eng-spa chromium $(VENV_PACKAGE)

.PHONY: demo test setup system-packages lint clean

# The live path on a bundled Spanish recording, played in real time as if from a microphone:
# English subtitles on the terminal, the English speech in out/demo/speech.wav (and on the
# speaker, when there is one), the transcript and translation in out/demo.
demo: setup
	$(BIN)/livesub live --input audio_fixtures/es_fleurs_3sentences.wav --realtime --language es --to en \
	  --speak --speak-to out/demo/speech.wav --out out/demo

test: lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/mypy

setup: system-packages $(VENV)/.installed

# Installs what is missing when we are root (or have password-less sudo); otherwise names it.
# One package the distribution lacks (Ubuntu has no `chromium` deb) does not keep the others out.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "livesub: please install these Debian packages:$$missing (sudo apt-get install$$missing)"; exit 0; fi; \
	echo "livesub: installing Debian packages:$$missing"; \
	$$SUDO apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null 2>&1 && exit 0; \
	for p in $$missing; do \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$p >/dev/null 2>&1 \
	    || echo "livesub: could not install $$p (live microphone input, Apertium translation and the HUD's browser tests need these)"; \
	done

$(VENV)/.installed: pyproject.toml
	$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[models,bench,dev,cluster]'
	touch $@

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
