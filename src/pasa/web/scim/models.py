"""What the SCIM service provider publishes: schemas, resource types, configuration.

The published schemas are the standard ones (RFC 7643 §4, §8.7) cut down to the attributes
PASA stores, so that ``/Schemas`` says exactly what a client can rely on. The pydantic
models every request is validated with, and every response rendered through, are built
from these same schemas (scim2-models ``Resource.from_schema``): what is published and what
is accepted can never disagree.
"""

from __future__ import annotations

from typing import Any

from scim2_models import (
    EnterpriseUser,
    Extension,
    Group,
    Resource,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    User,
)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

MAX_RESULTS = 200  # filter.maxResults: the largest page (count) answered
DEFAULT_COUNT = 100
BULK_MAX_OPERATIONS = 100
BULK_MAX_PAYLOAD = 1_048_576  # bytes

# attribute name -> the sub-attributes kept (None: a simple attribute)
_USER_ATTRIBUTES: dict[str, set[str] | None] = {
    "userName": None,
    "name": {"formatted", "familyName", "givenName", "middleName", "honorificPrefix"},
    "displayName": None,
    "active": None,
    "emails": {"value", "type", "primary"},
    "groups": {"value", "$ref", "display", "type"},
}
_ENTERPRISE_ATTRIBUTES: dict[str, set[str] | None] = {
    "employeeNumber": None,
    "organization": None,
    "department": None,
    "manager": {"value", "$ref"},
}
_GROUP_ATTRIBUTES: dict[str, set[str] | None] = {
    "displayName": None,
    "members": {"value", "$ref", "type"},
}


def _trimmed(schema: Schema, keep: dict[str, set[str] | None]) -> Schema:
    data = schema.model_dump()
    attributes = []
    for attribute in data["attributes"]:
        if attribute["name"] not in keep:
            continue
        subs = keep[attribute["name"]]
        if subs is not None:
            attribute["subAttributes"] = [
                s for s in attribute.get("subAttributes") or [] if s["name"] in subs
            ]
        if attribute["name"] == "manager":
            # A manager is named by id; the $ref is derived from it.
            for sub in attribute["subAttributes"]:
                sub["required"] = False
        attributes.append(attribute)
    data["attributes"] = attributes
    data["meta"] = {
        "resourceType": "Schema",
        "location": f"/Schemas/{data['id']}",
    }
    return Schema.model_validate(data)


USER_SCHEMA_DOC = _trimmed(User.to_schema(), _USER_ATTRIBUTES)
ENTERPRISE_SCHEMA_DOC = _trimmed(EnterpriseUser.to_schema(), _ENTERPRISE_ATTRIBUTES)
GROUP_SCHEMA_DOC = _trimmed(Group.to_schema(), _GROUP_ATTRIBUTES)
SCHEMAS: dict[str, Schema] = {
    s.id: s for s in (USER_SCHEMA_DOC, ENTERPRISE_SCHEMA_DOC, GROUP_SCHEMA_DOC) if s.id
}

EnterpriseModel: type[Extension] = Extension.from_schema(ENTERPRISE_SCHEMA_DOC)
_UserBase: Any = Resource.from_schema(USER_SCHEMA_DOC)
UserModel: type[Resource[Any]] = _UserBase[EnterpriseModel]
GroupModel: type[Resource[Any]] = Resource.from_schema(GROUP_SCHEMA_DOC)

RESOURCE_TYPES: dict[str, ResourceType] = {
    "User": ResourceType.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People of the organisation: HR-sourced staff and SCIM-created users",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/User"},
        }
    ),
    "Group": ResourceType.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Groups of the organisation's people",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/Group"},
        }
    ),
}


def service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/nhs-pasa/pasa/blob/main/docs/scim.md",
            "patch": {"supported": True},
            "bulk": {
                "supported": True,
                "maxOperations": BULK_MAX_OPERATIONS,
                "maxPayloadSize": BULK_MAX_PAYLOAD,
            },
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": True},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "PASA API token",
                    "description": "A PASA API token with the 'scim' scope, sent as "
                    "'Authorization: Bearer pasa_…'; it sees one organisation.",
                    "primary": True,
                }
            ],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": "/ServiceProviderConfig",
            },
        }
    )
