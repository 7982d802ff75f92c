#define BOOST_TEST_MODULE knit_netns
#include <boost/test/unit_test.hpp>
