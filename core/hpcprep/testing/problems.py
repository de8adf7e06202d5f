"""What the kit reports: the names of its checks and one ``Problem`` per broken promise."""

from __future__ import annotations

from dataclasses import dataclass

CHECKS = (
    "examples",
    "docs",
    "params",
    "outputs",
    "inputs",
    "pickle",
    "setup",
    "encode",
    "columns",
    "types",
    "arrow",
    "determinism",
    "empty_batch",
    "bad_input",
    "plan",
    "read",
    "sink",
)
#: Key of ``check_plugin``'s result for problems of the plugin itself (hooks, registration).
PLUGIN = "(plugin)"
REQUIRED_COLUMNS = ("source", "record_id")


@dataclass(frozen=True)
class Problem:
    """One broken promise: which stage, which check, and what a person should fix."""

    stage: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.stage} [{self.check}]: {self.message}"


def format_problems(problems: list[Problem], what: str = "") -> str:
    head = f"{what}: " if what else ""
    return f"{head}{len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)
