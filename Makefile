# bilora build. `make` builds ./bilora; `make test` installs what is missing,
# builds, and runs every test; `make run` starts the default job.
# CUDA: the backend under kernels/cuda/ is compiled wherever nvcc is found;
# CUDA=0 turns it off.

CC      ?= cc
BUILD   := build
CFLAGS  ?= -O2 -g
# -fno-math-errno: sqrtf without errno, so loops with it vectorise; and
# -fno-trapping-math: the clamps (a < b ? a : b) in the GELU kernels become
# vector selects (nothing here reads floating-point exception flags). Both
# leave every result as it was.
CFLAGS  += -std=c11 -Wall -Wextra -Werror -fopenmp -fno-math-errno -fno-trapping-math -D_POSIX_C_SOURCE=200809L -I.
LDLIBS  := -lopenblas -lcjson -lcsv -lpcre2-8 -lutf8proc -lcurl -lzip -lz -lncursesw -lpthread -lm
TESTLIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt)

NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CU_SRC  := $(wildcard kernels/cuda/*.cu)
ifeq ($(strip $(NVCC)),)
CUDA    ?= 0
else
CUDA    ?= 1
endif
ifeq ($(CU_SRC),)
CUDA := 0
endif

LIB_SRC := $(wildcard kernels/*.c kernels/cpu/*.c datasets/*.c engine/*.c sessions/*.c)
UI_SRC  := $(wildcard ui/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UI_OBJ  := $(UI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
TEST_UTIL_OBJ := $(TEST_UTIL:%.c=$(BUILD)/%.o)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVFLAGS := -O2 -std=c++17 -I. -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
           -gencode arch=compute_90,code=compute_90 -Xcompiler -Wall,-Werror
CU_OBJ  := $(CU_SRC:%.cu=$(BUILD)/%.o)
CFLAGS  += -DBILORA_CUDA
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
else
CU_OBJ  :=
endif

.PHONY: all deps venv run test check-tests bench tsan clean
all: bilora

deps:
	@scripts/install-deps.sh

venv:
	@scripts/setup-python.sh

$(BUILD)/libbilora.a: $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

bilora: $(UI_OBJ) $(BUILD)/libbilora.a
	$(CC) $(CFLAGS) -o $@ $(UI_OBJ) $(BUILD)/libbilora.a $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The build's identity (git describe), recorded in saved sessions: a resume
# by another build says so, since exactness holds within one build. The
# header is rewritten only when the identity changes.
BUILD_ID := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/version.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define BILORA_BUILD "$(BUILD_ID)"' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@
	@rm -f $@.tmp
$(BUILD)/sessions/session.o $(BUILD)/ui/main.o: $(BUILD)/version.h
FORCE:
.PHONY: FORCE

# -MMD -MP: every .cu is rebuilt when cuda_common.h (CudaContext) changes
$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c -o $@ $<

# -MMD: a suite that #includes ui/*.c (test_tui) is rebuilt when they change
$(BUILD)/tests/%: tests/%.c $(TEST_UTIL_OBJ) $(BUILD)/libbilora.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_UTIL_OBJ) $(BUILD)/libbilora.a $(TESTLIBS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libbilora.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbilora.a $(LDLIBS)

# The trainer's thread safety: its suite built with ThreadSanitizer (no
# OpenMP, OpenBLAS single-threaded: only our own threads are checked).
TSAN_BIN := $(BUILD)/tsan/test_trainer
$(TSAN_BIN): tests/test_trainer.c $(TEST_UTIL) $(LIB_SRC) $(wildcard */*.h) $(BUILD)/version.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -fopenmp-simd -fno-math-errno -fno-trapping-math -D_POSIX_C_SOURCE=200809L -I. -O1 -g -fsanitize=thread \
	  -o $@ tests/test_trainer.c $(TEST_UTIL) $(LIB_SRC) $(TESTLIBS) $(filter-out -fopenmp,$(LDLIBS))

tsan: $(TSAN_BIN)
	OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 $(TSAN_BIN)

check-tests: bilora $(TEST_BIN) $(TSAN_BIN)

run: deps bilora
	@scripts/run-default.sh

test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) check-tests
	@scripts/setup-python.sh
	@scripts/run-tests.sh

bench: deps bilora $(BENCH_BIN)
	@scripts/setup-python.sh

clean:
	rm -rf $(BUILD) bilora

-include $(LIB_OBJ:.o=.d) $(CU_OBJ:.o=.d) $(UI_OBJ:.o=.d) $(TEST_UTIL_OBJ:.o=.d) $(TEST_BIN:=.d)
