"""Who may do what: identities and roles (``auth``) and the approval service (``approvals``)."""
