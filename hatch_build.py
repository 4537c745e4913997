"""The wheel's build hook: a wheel ships, inside the package, the files a chapter reads beside the code (the mapping
``ship`` of ``[tool.hatch.build.targets.wheel.hooks.custom]`` in pyproject.toml: params/, book/, results/ and the
book's configuration, under lib/_repo/, which lib.settings.REPO_ROOT reads when lib is installed). An editable
install reads them from the checkout itself, so it ships nothing."""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ShipBookFiles(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if version == "standard":
            build_data["force_include"].update(self.config["ship"])
