"""Prop-firm rule packs (Topstep, Apex, Take Profit Trader...) and an account's path under one.

``model`` defines the rules as data, ``state`` follows an account under a pack (pure functions), ``packs``
loads the bundled YAML packs and the user's own. docs/propfirm.md is the reference.
"""
