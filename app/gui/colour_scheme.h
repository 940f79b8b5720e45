#pragma once
// --palette light|dark: a fixed Fusion palette, so the charts and views can be
// seen (and screenshotted) in both schemes whatever the desktop uses.
class QString;

// Returns false for an unknown scheme name.
bool applyColourScheme(const QString& scheme);
