"""quests_core is the pure-numerics layer: it never imports dask, distributed, zarr, yaml or
ase at module level (ase only lazily, inside the adapter's functions)."""

import ast
import pathlib
import subprocess
import sys
import textwrap

import quests_core

FORBIDDEN = ("dask", "distributed", "zarr", "yaml", "ase")
PACKAGE = pathlib.Path(quests_core.__file__).parent


def module_level_imports(source: str) -> set[str]:
    """Top-level names imported by a module outside any function or class body (including
    imports under module-level if/try/with blocks)."""
    names = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name.split(".")[0] for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names.add(child.module.split(".")[0])
            visit(child)

    visit(ast.parse(source))
    return names


def test_walker_sees_what_it_should():
    source = textwrap.dedent("""
        import numpy as np
        from dask import array
        try:
            import zarr.storage
        except ImportError:
            pass
        from . import sibling

        def lazy():
            import ase

        class Thing:
            import yaml
    """)
    assert module_level_imports(source) == {"numpy", "dask", "zarr"}


def test_no_module_of_quests_core_imports_a_forbidden_package_at_module_level():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert {"descriptors.py", "kernels.py", "estimators.py", "approximate.py", "ase_adapter.py"} <= {
        m.name for m in modules}
    for module in modules:
        imported = module_level_imports(module.read_text())
        assert not imported & set(FORBIDDEN), f"{module.name} imports {sorted(imported & set(FORBIDDEN))}"
        if module.name in ("descriptors.py", "kernels.py"):
            assert "numpy" in imported and "numba" in imported  # the walk does see real imports
    # the adapter does use ase, but only inside its functions
    assert "ase" not in module_level_imports((PACKAGE / "ase_adapter.py").read_text())
    assert "from ase import" in (PACKAGE / "ase_adapter.py").read_text()


def test_quests_core_works_with_forbidden_packages_blocked():
    # sys.modules[name] = None makes `import name` (and its submodules) raise ImportError
    script = textwrap.dedent(f"""
        import sys
        for name in {FORBIDDEN!r}:
            sys.modules[name] = None
        import numpy as np
        import quests_core
        rng = np.random.default_rng(0)
        positions = rng.uniform(0.0, 8.0, (30, 3))
        x = quests_core.compute_descriptors(positions, 8.0 * np.eye(3), True, k=8, cutoff=4.0)
        H = quests_core.entropy(x, 0.05)
        dh = quests_core.delta_entropy(x[:3], x, [0.05, 0.1])
        assert x.shape == (30, 15) and 0.0 < H <= np.log(30) and dh.shape == (3, 2), (x.shape, H, dh.shape)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r} and sys.modules[m] is not None)
        assert not loaded, loaded
        try:
            import ase
        except ImportError:
            print("blocked")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"
