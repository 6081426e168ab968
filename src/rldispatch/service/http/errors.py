"""The bodies of the API's error answers, shared by every router."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    message: str
    detail: list[FieldError]
