# knit: the two commands a newcomer runs are `make demo` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test unit netns demo bench clean format

all: build

deps:
	@./install/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Everything: packages, build, unit tests, then the root-only namespace tests.
test: deps build
	cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -L netns

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

netns: build
	cd $(BUILD) && ctest --output-on-failure -L netns

demo: deps build
	./lab/examples/demo.sh $(BUILD)/knit

bench: deps build
	./test/bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')
