// Boost.JSON compiled into the preload library (its documented header-only
// use), so that a plain C host does not load libboost_json and, through it,
// the shared libstdc++. Symbols stay local (preload.map).
#include <boost/json/src.hpp>
