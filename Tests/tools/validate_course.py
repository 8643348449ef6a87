#!/usr/bin/env python3
"""Validates a course manifest.json against docs/course.schema.json, lectures against docs/lecture.schema.json.

Usage: validate_course.py MANIFEST REPO_ROOT
"""
import json, sys, jsonschema
from referencing import Registry, Resource
root = sys.argv[2]
lecture = json.load(open(root + '/docs/lecture.schema.json'))
course = json.load(open(root + '/docs/course.schema.json'))
reg = Registry().with_resource(lecture['$id'], Resource.from_contents(lecture))
jsonschema.Draft202012Validator(course, registry=reg).validate(json.load(open(sys.argv[1])))
print("ok")
