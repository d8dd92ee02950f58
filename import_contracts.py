"""import-linter contract types of rdv (registered in pyproject.toml's ``[tool.importlinter]``).

``allowed_imports``: an allow-list. The modules of ``source_modules`` may import only their own
package's modules, the standard library (``allow_stdlib``) and the external packages named in
``allowed_modules``; any other import (another part of the project, a library not listed)
breaks the contract. A new dependency of the engine is then a decision written in one place,
not a side effect.
"""

from __future__ import annotations

import sys
from typing import Any

from importlinter import Contract, ContractCheck, fields, output


class AllowedImportsContract(Contract):
    """Only the listed modules, the standard library and the source package itself."""

    type_name = "allowed_imports"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.StringField())
    allow_stdlib = fields.BooleanField(required=False, default=True)

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        allowed = set(self.allowed_modules)
        if self.allow_stdlib:
            allowed |= set(sys.stdlib_module_names) | {"__future__"}
        illegal: list[tuple[str, str, tuple[int, ...]]] = []
        for source in self.source_modules:
            own = {source.name} | graph.find_descendants(source.name)
            for importer in sorted(own):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if imported in own or imported.split(".")[0] in allowed:
                        continue
                    lines = tuple(d["line_number"] for d in graph.get_import_details(importer=importer,
                                                                                     imported=imported))
                    illegal.append((importer, imported, lines))
        return ContractCheck(kept=not illegal, warnings=None, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["illegal"]:
            output.print_error(f"{importer} -> {imported} (l.{', '.join(map(str, lines))}) is not allowed", bold=False)
            output.new_line()
