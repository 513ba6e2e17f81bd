"""Who a bearer token belongs to, as the cluster's TokenReview API says (for ``_auth``)."""

from __future__ import annotations

from dataclasses import dataclass

from ._kube import KubeApi


@dataclass(frozen=True)
class ReviewedToken:
    """Who a bearer token belongs to."""

    username: str
    groups: tuple[str, ...] = ()


class TokenReviewer:
    """Reviews tokens with the TokenReview API of the cluster ``api`` reaches."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def __call__(self, token: str) -> ReviewedToken | None:
        """Who ``token`` authenticates as; None when it is not valid."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        body = self._api.request(
            "POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=review, doing="review a bearer token"
        )
        status = body.get("status") or {}
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            return None
        return ReviewedToken(str(user["username"]), tuple(str(g) for g in user.get("groups") or ()))
