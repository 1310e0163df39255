"""Cin7 contacts (the people of a customer or supplier) -> a Xero contact's primary person and ContactPersons.

Xero keeps one primary person in the contact's own FirstName/LastName/EmailAddress and at most five
others in ContactPersons, and refuses the others outright when the primary has no e-mail address. Cin7
has any number of people, one marked Default. So the Default one is the primary, the next five go along,
and everyone who does not fit is named in ``left_out`` with the reason, for the operator to see rather
than for the sync to drop silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .cin7core import Cin7CustomerContact, default_contact_of
from .util import clean_text, normalise_email, normalise_name
from .xero import XeroContactPerson

__all__ = ["PERSONS_MAX", "ContactPeople", "map_people", "split_name"]

#: Xero's limit on ContactPersons.
PERSONS_MAX = 5
PERSON_FIELD_MAX = 255


@dataclass(frozen=True)
class ContactPeople:
    """The primary person's fields, the other people to send, and who was left out and why."""

    first_name: str | None = None
    last_name: str | None = None
    email_address: str | None = None
    persons: list[XeroContactPerson] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """A Cin7 person's single Name as Xero's FirstName and LastName: the first word, then the rest.

    Cin7 has one name field, Xero two; the first word is the given name far more often than not, and
    nothing is lost either way, since Xero shows "FirstName LastName" back as typed.
    """
    text = clean_text(name)
    if text is None:
        return None, None
    first, _, rest = text.partition(" ")
    first = first.strip()
    return first, clean_text(rest)


def _who(person: Cin7CustomerContact) -> str:
    name, email = clean_text(person.name), clean_text(person.email)
    if name and email:
        return f"{name} <{email}>"
    return name or (f"<{email}>" if email else "(a person with no name)")


def _is_blank(person: Cin7CustomerContact) -> bool:
    return clean_text(person.name) is None and clean_text(person.email) is None


def _same_person(a: Cin7CustomerContact, b: Cin7CustomerContact) -> bool:
    return normalise_name(a.name or "") == normalise_name(b.name or "") and normalise_email(a.email) == normalise_email(
        b.email
    )


def _person(person: Cin7CustomerContact) -> tuple[XeroContactPerson | None, str | None]:
    """The Xero person, or why it cannot be one (a value longer than Xero holds, not to be cut)."""
    first, last = split_name(person.name)
    email = clean_text(person.email)
    too_long = [
        name
        for name, value in (("FirstName", first), ("LastName", last), ("EmailAddress", email))
        if value is not None and len(value) > PERSON_FIELD_MAX
    ]
    if too_long:
        return None, f"{', '.join(too_long)} longer than Xero's {PERSON_FIELD_MAX} characters"
    return XeroContactPerson(
        first_name=first, last_name=last, email_address=email, include_in_emails=person.include_in_email
    ), None


def map_people(contacts: Sequence[Cin7CustomerContact]) -> ContactPeople:
    """The primary person (the Default contact, else the first) and up to five others, in Cin7's order.

    People with neither a name nor an e-mail carry nothing and are skipped, as is a second copy of the
    primary. When the primary has no e-mail address no one else is sent (Xero refuses them) and each of
    them is named in ``left_out`` with that reason.
    """
    primary = default_contact_of(contacts)
    if primary is None:
        return ContactPeople()
    first, last = split_name(primary.name)
    email = clean_text(primary.email)
    others = [p for p in contacts if p is not primary and not _is_blank(p) and not _same_person(p, primary)]
    if email is None:
        reason = (
            f"the primary person {_who(primary)} has no e-mail address, and Xero adds no other people "
            "to a contact without one"
        )
        return ContactPeople(first, last, None, [], [f"{_who(p)}: {reason}" for p in others])
    persons: list[XeroContactPerson] = []
    left_out: list[str] = []
    for other in others:
        person, problem = _person(other)
        if person is None:
            left_out.append(f"{_who(other)}: {problem}")
        elif len(persons) >= PERSONS_MAX:
            left_out.append(f"{_who(other)}: Xero holds at most {PERSONS_MAX} people besides the primary one")
        else:
            persons.append(person)
    return ContactPeople(first, last, email, persons, left_out)
