#!/usr/bin/env python3
"""Validates a JSON document against a schema of docs/openapi.json's components.

Usage: validate_openapi.py OPENAPI_JSON SCHEMA_NAME DOCUMENT_JSON
"""
import json
import sys

import jsonschema

spec = json.load(open(sys.argv[1]))
schema = {"$ref": f"#/components/schemas/{sys.argv[2]}", "components": spec["components"]}
jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[3])))
print("ok")
