# Berth: make run | make test | make install   (Debian 12, as root)
PREFIX ?= /usr/local
OUT    := out
SOURCES := $(shell find src native -name '*.cs' -o -name '*.csproj' -o -name '*.c' 2>/dev/null) Directory.Build.props

.PHONY: all build deps install run test bench clean

all: build

build: $(OUT)/berth

$(OUT)/berth: $(SOURCES)
	rm -f $(OUT)/berth-runc
	dotnet publish src/Berth.Runc -c Release -o $(OUT) --nologo -v quiet
	dotnet publish src/Berth.Cli -c Release -o $(OUT) --nologo -v quiet
	@touch $(OUT)/berth

deps:
	@scripts/install-deps.sh

install: build
	install -d $(PREFIX)/bin
	install -m 0755 $(OUT)/berth $(PREFIX)/bin/berth
	rm -f $(PREFIX)/bin/berth-runc
	install -m 0755 $(OUT)/berth-runc $(PREFIX)/bin/berth-runc

run: deps install
	@scripts/demo.sh

test: deps build
	@scripts/test.sh

bench: deps build
	@bench/runtime.sh

clean:
	rm -rf $(OUT) obj-native src/*/bin src/*/obj tests/*/bin tests/*/obj
