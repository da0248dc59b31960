"""Projects: what a client sends to create, replace, patch and rename one, and what it gets."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.schemas.common import PROJECT_PATTERN, LXDObject


def _config_value(value: Any) -> Any:
    """LXD config values are strings; accept JSON booleans and numbers as a user would type
    them in `lxc project set` (`true` -> "true", `10` -> "10")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


ConfigValue = Annotated[str, BeforeValidator(_config_value)]
ProjectNameField = Annotated[
    str,
    Field(
        pattern=PROJECT_PATTERN,
        description="Project name: letters, digits and `_.+-`, at most 63 characters",
        examples=["staging"],
    ),
]

_CONFIG_EXAMPLE: dict[str, Any] = {"features.images": "true", "limits.instances": "10"}


class ProjectCreate(BaseModel):
    """A new project. Features left out are enabled, as LXD does (`features.images`,
    `features.profiles`, `features.storage.volumes` = `true`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "staging", "description": "Staging", "config": _CONFIG_EXAMPLE},
            ]
        },
    )

    name: ProjectNameField
    description: str = Field(default="", max_length=4096)
    config: dict[str, ConfigValue] = Field(default_factory=dict)


class ProjectPut(BaseModel):
    """The whole writable state of a project; keys left out of `config` are removed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"description": "Staging", "config": _CONFIG_EXAMPLE}]},
    )

    description: str = Field(default="", max_length=4096)
    config: dict[str, ConfigValue] = Field(default_factory=dict)


class ProjectPatch(BaseModel):
    """A partial update: `config` keys are merged into the project's config (a `null` value
    removes the key); `description`, when given, replaces the old one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"config": {"limits.instances": "20", "user.owner": None}},
                {"description": "Staging, shared with QA"},
            ]
        },
    )

    description: str | None = Field(default=None, max_length=4096)
    config: dict[str, ConfigValue | None] | None = None


class ProjectRename(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "qa"}]})

    name: ProjectNameField


class ProjectPublic(LXDObject):
    """A project as LXD describes it."""

    name: str
    description: str = ""
    config: dict[str, str] = Field(default_factory=dict)
    used_by: list[str] = Field(
        default_factory=list, description="URLs of the objects that live in the project"
    )


class ProjectState(LXDObject):
    """Resource usage against the project's limits (`-1`: no limit)."""

    resources: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"instances": {"Limit": 10, "Usage": 2}, "memory": {"Limit": -1, "Usage": 0}}],
    )
